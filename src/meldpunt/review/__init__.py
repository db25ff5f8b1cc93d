"""What the analyst's screen gets: media rendered server-side so that as little as possible is seen.

``render`` turns an image into a small, blurred, greyscale thumbnail and a video into a contact
sheet of blurred keyframes; the original bytes never reach the browser. ``reveal`` renderings are
larger, in colour and sharp, and still re-encoded without metadata.
"""

from meldpunt.review.render import RenderError, contact_sheet, render_for_review, thumbnail

__all__ = ["RenderError", "contact_sheet", "render_for_review", "thumbnail"]
