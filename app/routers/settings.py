"""Routes for the settings area (to be filled in by its issue)."""

from fastapi import APIRouter

router = APIRouter()
