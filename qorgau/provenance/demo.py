"""The labels demo: the DEMO bank's image generator has labeled a picture and its chatbot an answer, so
``/labels`` shows a signer (from the LOCAL TEST CA) and records, and ``/labels/verify`` has something to check.

The picture is drawn here (a gradient with shapes, no photograph of anyone); the text is an invented answer.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

from sqlalchemy import select

from ..core import auth
from ..core.auth import Principal
from ..core.demo import DEMO_BIN
from .models import LabelRecord

if TYPE_CHECKING:
    from ..core.platform import Platform

DEMO_ACTOR_ID = 0
DEMO_TEXT = ("Сәлеметсіз бе! Картаңызды қосымшада бір минутта бұғаттауға болады: «Карталар» → «Бұғаттау».\n"
             "Здравствуйте! Карту можно заблокировать в приложении за минуту: «Карты» → «Заблокировать».\n"
             "Hello! You can block your card in the app in a minute: Cards → Block.\n")


def demo_picture(width: int = 640, height: int = 400) -> bytes:
    """A synthetic 'campaign picture': deterministic, nobody's likeness."""
    from PIL import Image, ImageDraw

    image = Image.linear_gradient("L").resize((width, height)).convert("RGB")
    draw = ImageDraw.Draw(image)
    draw.ellipse((width * 0.55, height * 0.15, width * 0.9, height * 0.7), fill=(230, 180, 40))
    draw.rectangle((width * 0.1, height * 0.45, width * 0.45, height * 0.8), fill=(40, 120, 200))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def seed_labels_demo(platform: Platform) -> bool:
    """Label the demo picture and answer once; False if there is no DEMO organization or it was done before."""
    from .service import labels_for

    with platform.db.reader() as session:
        org = auth.find_organization_by_bin(session, DEMO_BIN)
        if org is None:
            return False
        org_id = org.id
    with platform.db.reader(org_id) as session:
        if session.scalar(select(LabelRecord.id).limit(1)) is not None:
            return False
    principal = Principal(kind="system", id=DEMO_ACTOR_ID, organization_id=org_id, roles=frozenset({"dpo"}))
    labels = labels_for(platform)
    with platform.db.transaction(org_id) as session:
        labels.label(session, principal, data=demo_picture(), filename="campaign.png", system="demo-image-generator")
        labels.label(session, principal, data=DEMO_TEXT.encode(), filename="answer.txt", system="demo-chatbot")
    return True


__all__ = ["DEMO_TEXT", "demo_picture", "seed_labels_demo"]
