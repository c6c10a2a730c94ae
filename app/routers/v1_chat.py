"""Routes for the v1_chat area (to be filled in by its issue)."""

from fastapi import APIRouter

router = APIRouter()
