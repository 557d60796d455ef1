"""Unbound extension singletons; create_app binds them."""

from flask_limiter import Limiter
from flask_migrate import Migrate
from flask_socketio import SocketIO
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    pass


def _limit_key():
    """Limit per shopper: the session's cart, or the address for a shopper without one."""
    from flask import request, session

    cart_id = session.get("cart_id")
    return f"cart:{cart_id}" if cart_id else f"addr:{request.remote_addr}"


db = SQLAlchemy(model_class=Base)
socketio = SocketIO()
migrate = Migrate()
limiter = Limiter(key_func=_limit_key, default_limits=[])
