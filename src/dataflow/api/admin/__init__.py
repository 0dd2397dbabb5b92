"""Admin/finance API (`/admin/v1`, staff roles) and the partner's own account (`/v1/account`)."""

from dataflow.api.admin.account import account_router
from dataflow.api.admin.routes import admin_router

__all__ = ["account_router", "admin_router"]
