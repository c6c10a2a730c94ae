"""Routes for the datasets area (to be filled in by its issue)."""

from fastapi import APIRouter

router = APIRouter()
