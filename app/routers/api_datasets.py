"""Routes for the api_datasets area (to be filled in by its issue)."""

from fastapi import APIRouter

router = APIRouter()
