"""All routers of the service."""

from fastapi import APIRouter

from exocube.serve.api.routes import admin, health, models, predict

api_router = APIRouter()
api_router.include_router(health.router)
api_router.include_router(models.router)
api_router.include_router(predict.router)
api_router.include_router(admin.router)
