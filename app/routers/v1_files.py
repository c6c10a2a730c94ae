"""Routes for the v1_files area (to be filled in by its issue)."""

from fastapi import APIRouter

router = APIRouter()
