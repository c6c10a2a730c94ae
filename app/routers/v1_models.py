"""Routes for the v1_models area (to be filled in by its issue)."""

from fastapi import APIRouter

router = APIRouter()
