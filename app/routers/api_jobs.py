"""Routes for the api_jobs area (to be filled in by its issue)."""

from fastapi import APIRouter

router = APIRouter()
