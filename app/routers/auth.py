"""Routes for the auth area (to be filled in by its issue)."""

from fastapi import APIRouter

router = APIRouter()
