"""The dashboard in a real browser against a real ``imgpipe serve``: upload, watch, inspect,
filter, delete - with no console errors and no script from image metadata ever running.

The tests of this module share one server and run in order: the gallery test uploads the
files the later tests look at.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Locator, Page, Request, Route, ViewportSize, expect

import fixtures as F

from .chromium import DESKTOP, PHONE, Console, needs_chromium
from .images import HOSTILE_MAKE, MODEL, UploadSet, small_jpeg
from .server import ServeProcess

pytestmark = [pytest.mark.e2e_browser, needs_chromium]

PROCESSING_TIMEOUT_MS = 90_000
TALL: ViewportSize = {"width": 1280, "height": 1180}
X = "\N{MULTIPLICATION SIGN}"  # as the dashboard writes sizes
# The one failed request the page is expected to make: the SVG upload, refused with 415.
EXPECTED_ERRORS = re.compile(r"Failed to load resource: .*status of 415")


def card(page: Page, filename: str) -> Locator:
    return page.locator(".card").filter(has=page.locator(".card-title", has_text=filename))


def assert_no_console_errors(console: Console) -> None:
    unexpected = [e for e in console.errors if not EXPECTED_ERRORS.search(e)]
    assert unexpected == []


def assert_no_script_ran(page: Page) -> None:
    assert page.evaluate("typeof window.__pwned") == "undefined"
    assert page.evaluate("document.scripts.length") == 1  # the dashboard's own module


def test_upload_inspect_filter_delete(
    page: Page,
    console: Console,
    server: ServeProcess,
    uploads: UploadSet,
    artifacts: Path,
    readme_screenshot: Path,
) -> None:
    """Files picked on the page are uploaded (large ones through the signed form), show as
    pending cards, turn into thumbnails or plain-word rejections; the detail view shows the
    metadata as text; tag and status filters narrow the gallery; delete removes an image."""
    requests: list[tuple[str, str]] = []

    def remember(request: Request) -> None:
        requests.append((request.method, request.url.removeprefix(server.url).split("?")[0]))

    page.on("request", remember)
    page.goto(f"{server.url}/")
    expect(page).to_have_url(f"{server.url}/dashboard")
    expect(page.get_by_role("heading", name="Drop images anywhere to upload")).to_be_visible()
    expect(page.locator("#count")).to_have_text("0 images")
    expect(page.get_by_text("No images yet")).to_be_visible()

    page.locator("#file-input").set_input_files(uploads.all)
    expect(page.locator(".card")).to_have_count(len(uploads.all))  # at once, before any reply

    refused = card(page, uploads.svg.name)
    expect(refused).to_have_attribute("data-status", "rejected")
    expect(refused).to_contain_text("This is not an image type imgpipe accepts")
    expect(refused).to_contain_text("looks like SVG")
    expect(refused.locator(".badge")).to_have_text("Rejected")

    truncated = card(page, uploads.truncated.name)
    expect(truncated).to_have_attribute("data-status", "rejected", timeout=PROCESSING_TIMEOUT_MS)
    expect(truncated).to_contain_text("The file is incomplete")

    for path in uploads.good:
        media = card(page, path.name).locator(".card-media")
        expect(media).to_have_class(re.compile(r"\bloaded\b"), timeout=PROCESSING_TIMEOUT_MS)
    sunset = card(page, uploads.sunset.name)
    image = sunset.locator("img")
    expect(image).to_have_attribute("alt", uploads.sunset.name)
    expect(image).to_have_attribute("loading", "lazy")
    assert image.evaluate("img => img.naturalWidth") > 0
    assert image.evaluate("img => img.currentSrc").endswith("/renditions/thumb.webp")
    webp = sunset.locator("picture source[type='image/webp']")
    srcset = webp.get_attribute("srcset") or ""
    for name in ("thumb", "medium", "large"):
        assert f"/renditions/{name}.webp " in srcset
    assert "/renditions/thumb.jpg 320w" in (image.get_attribute("srcset") or "")
    # The placeholder is the decoded ThumbHash (preferred over the BlurHash): the photo's shape.
    placeholder = sunset.locator("canvas.placeholder[data-hash='thumbhash']")
    expect(placeholder).to_have_count(1)
    shape = placeholder.evaluate(
        "c => [c.width, c.height, c.getContext('2d')"
        ".getImageData(0, 0, c.width, c.height).data.some(v => v > 0)]"
    )
    assert shape[0] < shape[1]  # portrait, like the 900 x 1200 sunset
    assert shape[2]
    expect(sunset.locator(".card-sub")).to_have_text(re.compile(rf"^900 {X} 1200 · JPEG · \d+ KB$"))

    assert ("POST", "/uploads") in requests  # the large file asked for a signed form ...
    assert ("POST", "/_uploads") in requests  # ... and posted it to the form's URL
    assert requests.count(("POST", "/images")) == len(uploads.all) - 1
    expect(page.locator("#count")).to_have_text("5 images")
    expect(page.locator("#toast")).not_to_have_class(re.compile(r"\bvisible\b"), timeout=10_000)
    page.mouse.move(0, 0)
    gallery_shot = artifacts / "dashboard-gallery.png"
    page.screenshot(path=gallery_shot, animations="disabled")
    if os.environ.get("IMGPIPE_UPDATE_SCREENSHOT"):  # a test run must not dirty the tree
        readme_screenshot.parent.mkdir(exist_ok=True)
        shutil.copyfile(gallery_shot, readme_screenshot)

    # The detail view: every fact as text, the hostile EXIF make included.
    sunset.locator("a").click()
    detail = page.locator("#detail")
    expect(detail).to_be_visible()
    expect(page).to_have_url(re.compile(r"#/images/[0-9a-f]+$"))
    expect(detail.get_by_role("heading", name=uploads.sunset.name)).to_be_visible()
    expect(detail.locator(".detail-media")).to_have_class(re.compile(r"\bloaded\b"))
    facts = {
        "Dimensions": f"900 {X} 1200 px",
        "Format": "JPEG (image/jpeg)",
        "Taken": "21:04:30",
        "Camera": f"{HOSTILE_MAKE} {MODEL}",
        "Exposure": "1/250 s · f/2.8 · ISO 200 · 35 mm",
    }
    for term, value in facts.items():
        row = detail.locator(".fact").filter(has=page.locator("dt", has_text=term))
        expect(row.locator("dd")).to_contain_text(value)
    camera = detail.locator(".fact").filter(has=page.locator("dt", has_text="Camera"))
    expect(camera.locator("dd")).to_have_text(f"{HOSTILE_MAKE} {MODEL}")  # shown as text ...
    assert camera.locator("dd").evaluate("dd => dd.childElementCount") == 0  # ... not markup
    tags = detail.locator(".tag-row")
    expect(tags.filter(has_text="portrait")).to_contain_text("100 % · local")
    expect(tags.filter(has_text="camera:")).to_have_count(1)
    expect(detail.locator(".colours li").first).to_contain_text(re.compile(r"#[0-9a-f]{6}"))
    expect(detail.locator("table.renditions tbody tr")).to_have_count(6)
    open_link = detail.get_by_role("link", name="Open thumb webp")
    expect(open_link).to_have_attribute("href", re.compile(r"/renditions/thumb\.webp$"))
    page.set_viewport_size(TALL)  # room for most of the facts in the artifact
    page.screenshot(path=artifacts / "dashboard-detail.png", animations="disabled")
    page.set_viewport_size(DESKTOP)
    raw = detail.locator("details.raw")
    expect(raw.locator("pre")).to_be_hidden()
    raw.locator("summary").click()
    expect(raw.locator("pre")).to_contain_text('"make": "<script>window.__pwned=1</script>"')
    assert_no_script_ran(page)

    page.keyboard.press("Escape")
    expect(detail).to_be_hidden()
    expect(page).to_have_url(f"{server.url}/dashboard")
    expect(sunset.locator("a")).to_be_focused()  # focus returns to the card it came from

    # Filters: a tag through the search box, then a status.
    page.locator("#tag-search").fill("portr")
    page.keyboard.press("Enter")
    expect(page).to_have_url(f"{server.url}/dashboard?tag=portrait")
    expect(page.locator("#active-tag")).to_contain_text("portrait")
    expect(page.locator(".card[data-id]")).to_have_count(1)
    expect(card(page, uploads.sunset.name)).to_be_visible()
    page.locator("#clear-tag").click()
    expect(page.locator(".card[data-id]")).to_have_count(5)
    page.get_by_role("button", name="Rejected", exact=True).click()
    expect(page.locator(".card[data-id]")).to_have_count(1)
    expect(card(page, uploads.truncated.name)).to_be_visible()
    page.get_by_role("button", name="All", exact=True).click()
    expect(page.locator(".card[data-id]")).to_have_count(5)

    # Delete the large image, through the confirmation dialog.
    alpine = card(page, uploads.alpine.name)
    alpine_id = alpine.get_attribute("data-id")
    alpine.locator("a").click()
    detail.get_by_role("button", name="Delete").click()
    confirm = page.locator("#confirm")
    expect(confirm).to_be_visible()
    expect(confirm).to_contain_text(f"Delete {uploads.alpine.name}?")
    confirm.get_by_role("button", name="Cancel").click()
    expect(confirm).to_be_hidden()
    expect(detail).to_be_visible()  # cancelled: nothing happened
    detail.get_by_role("button", name="Delete").click()
    confirm.get_by_role("button", name="Delete").click()
    expect(detail).to_be_hidden()
    expect(alpine).to_have_count(0)
    expect(page.locator("#toast")).to_have_text(f"Deleted {uploads.alpine.name}")
    assert server.client.get(f"{server.url}/images/{alpine_id}").status_code == 404
    page.reload()
    expect(page.locator(".card[data-id]")).to_have_count(4)
    expect(card(page, uploads.alpine.name)).to_have_count(0)

    assert_no_script_ran(page)
    assert_no_console_errors(console)


def test_keyboard_and_phone_width(
    page: Page, console: Console, server: ServeProcess, artifacts: Path
) -> None:
    """At phone width the gallery has two columns and no sideways scroll; arrow keys move
    between cards, Enter opens the detail view, Escape returns to the card, / finds tags."""
    for number in range(4):
        reply = server.client.post(f"{server.url}/images?filename=phone-{number}.jpg",
                                   content=small_jpeg(number),
                                   headers={"Content-Type": "image/jpeg"})  # fmt: skip
        assert reply.status_code == 202
    page.set_viewport_size(PHONE)
    page.goto(f"{server.url}/dashboard")
    cards = page.locator(".card[data-id]")
    expect(cards.nth(3)).to_be_visible()  # at least the four just uploaded
    expect(page.locator(".card-pending, .card-processing")).to_have_count(
        0, timeout=PROCESSING_TIMEOUT_MS
    )
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    boxes = [cards.nth(i).bounding_box() for i in range(3)]
    first, second_box, third = (box or {"y": -1.0} for box in boxes)
    assert first["y"] == second_box["y"] < third["y"]  # two per row
    page.screenshot(path=artifacts / "dashboard-phone.png", animations="disabled")

    cards.first.locator("a").focus()
    page.keyboard.press("ArrowRight")
    second = cards.nth(1)
    expect(second.locator("a")).to_be_focused()
    page.keyboard.press("ArrowDown")
    expect(cards.nth(3).locator("a")).to_be_focused()
    page.keyboard.press("ArrowUp")
    expect(second.locator("a")).to_be_focused()
    page.keyboard.press("Enter")
    detail = page.locator("#detail")
    expect(detail).to_be_visible()
    name = second.locator(".card-title").inner_text()
    expect(detail.get_by_role("heading", name=name)).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    page.screenshot(path=artifacts / "dashboard-phone-detail.png", animations="disabled")
    page.keyboard.press("Escape")
    expect(detail).to_be_hidden()
    expect(second.locator("a")).to_be_focused()

    page.keyboard.press("/")
    expect(page.locator("#tag-search")).to_be_focused()
    assert_no_console_errors(console)


def test_dropped_files_upload_like_picked_ones(
    page: Page, console: Console, server: ServeProcess
) -> None:
    """Files dropped on the page show the drop overlay, then upload and process like picked
    ones; Reprocess (confirmed) sends the image round again to a new thumbnail."""
    page.goto(f"{server.url}/dashboard")
    expect(page.locator("#count")).to_have_text(re.compile(r"^\d+ images?$"))
    data = base64.b64encode(small_jpeg(2)).decode()
    page.evaluate(
        """data => {
            const bytes = Uint8Array.from(atob(data), c => c.charCodeAt(0));
            const transfer = new DataTransfer();
            transfer.items.add(new File([bytes], "dropped.jpg", {type: "image/jpeg"}));
            const fire = type => document.body.dispatchEvent(
                new DragEvent(type, {bubbles: true, cancelable: true, dataTransfer: transfer}));
            fire("dragenter");
            window.__overlay = document.body.classList.contains("dragging");
            fire("drop");
        }""",
        data,
    )
    assert page.evaluate("window.__overlay") is True
    expect(page.locator("body")).not_to_have_class(re.compile(r"\bdragging\b"))
    dropped = card(page, "dropped.jpg")
    media = dropped.locator(".card-media")
    expect(media).to_have_class(re.compile(r"\bloaded\b"), timeout=PROCESSING_TIMEOUT_MS)
    processed_at = server.client.get(f"{server.url}/images/{dropped.get_attribute('data-id')}")

    dropped.locator("a").click()
    detail = page.locator("#detail")
    detail.get_by_role("button", name="Reprocess").click()
    confirm = page.locator("#confirm")
    expect(confirm).to_contain_text("Process dropped.jpg again?")
    confirm.get_by_role("button", name="Reprocess").click()
    badge = detail.locator(".detail-heading .badge")
    expect(badge).to_have_text(re.compile(r"^(Pending|Processing)$"))
    expect(detail.get_by_role("button", name="Processing…")).to_be_disabled()
    expect(badge).to_have_text("Processed", timeout=PROCESSING_TIMEOUT_MS)
    record = server.client.get(f"{server.url}/images/{dropped.get_attribute('data-id')}").json()
    assert record["processed_at"] > processed_at.json()["processed_at"]
    expect(detail.locator(".detail-media")).to_have_class(re.compile(r"\bloaded\b"))
    assert_no_console_errors(console)


def test_gallery_pages_through_the_cursor_as_it_scrolls(
    page: Page, console: Console, server: ServeProcess
) -> None:
    """Newest first, one page of 24 at a time through the API's cursor: scrolling to the end
    loads the next pages until the gallery holds exactly what the API lists, in its order."""
    for number in range(30):
        reply = server.client.post(f"{server.url}/images?filename=page-{number:02}.jpg",
                                   content=small_jpeg(number),
                                   headers={"Content-Type": "image/jpeg"})  # fmt: skip
        assert reply.status_code == 202
    listed = server.client.get(f"{server.url}/images?limit=200").json()
    assert listed["next_cursor"] is None
    expected = [item["id"] for item in listed["items"]]

    pages: list[str] = []
    page.on("request", lambda r: pages.append(r.url) if "/images?" in r.url else None)
    page.goto(f"{server.url}/dashboard")
    cards = page.locator(".card[data-id]")
    expect(cards.nth(23)).to_be_visible()
    for _ in range(20):  # scroll to the end until nothing more comes
        if cards.count() >= len(expected):
            break
        page.locator("#sentinel").scroll_into_view_if_needed()
        page.wait_for_timeout(150)
    expect(cards).to_have_count(len(expected))
    expect(page.locator("#count")).to_have_text(f"{len(expected)} images")
    expect(page.locator("#load-more")).to_be_hidden()
    assert "limit=24" in pages[0]
    assert "cursor=" not in pages[0]
    assert len(pages) == -(-len(expected) // 24)  # one request per page
    assert all("cursor=" in url for url in pages[1:])
    assert [cards.nth(i).get_attribute("data-id") for i in range(cards.count())] == expected
    assert_no_console_errors(console)


def test_the_detail_view_names_a_near_duplicate_and_shows_similar_images(
    page: Page, console: Console, server: ServeProcess, artifacts: Path
) -> None:
    """A smaller re-encode of an uploaded photo is marked as looking almost the same as it,
    with a link; each one's detail view shows the other among its similar images, as a loaded
    thumbnail that opens it."""
    ids = []
    for name, data in (("harbour.jpg", F.scene(11)), ("harbour-small.jpg",
                       F.scene(11, (300, 225), quality=60))):  # fmt: skip
        reply = server.client.post(f"{server.url}/images?filename={name}", content=data,
                                   headers={"Content-Type": "image/jpeg"})  # fmt: skip
        assert reply.status_code == 202
        ids.append(reply.json()["id"])
        server.wait_processed(ids[-1])
    first, copy = ids

    page.goto(f"{server.url}/dashboard#/images/{copy}")
    notice = page.locator(f"[data-near-duplicate='{first}']")
    expect(notice).to_contain_text("Looks almost the same as")
    expect(notice).to_contain_text("of 64 hash bits differ")
    similar = page.locator(f"section[data-similar='{copy}']")
    expect(similar).to_be_visible()
    tile = similar.locator(f"a[href='#/images/{first}']")
    expect(tile.locator("img")).to_have_attribute("alt", "harbour.jpg")
    expect(tile).to_contain_text(re.compile(r"same hash|\d+ bits apart"))
    tile.locator("img").scroll_into_view_if_needed()
    page.wait_for_function(
        "sel => document.querySelector(sel)?.naturalWidth > 0",
        arg=f"section[data-similar='{copy}'] img",
    )
    page.screenshot(path=artifacts / "dashboard-similar.png", animations="disabled")

    tile.click()
    expect(page.locator("#detail-title")).to_have_text("harbour.jpg")
    expect(
        page.locator(f"section[data-similar='{first}'] a[href='#/images/{copy}']")
    ).to_be_visible()
    expect(page.locator("[data-near-duplicate]")).to_have_count(0)  # the older one points nowhere
    assert_no_console_errors(console)


def test_the_detail_view_outlines_the_faces_that_placed_the_focal_point(
    page: Page, console: Console, server: ServeProcess
) -> None:
    """A record whose point faces placed (what a stack with Faces=rekognition stores; the local
    face has no finder, so the browser is handed the real record with the AWS fields added):
    each face is outlined where it is, and the caption says the point came from them."""
    reply = server.client.post(f"{server.url}/images?filename=faces.png", content=F.salient(),
                               headers={"Content-Type": "image/png"})  # fmt: skip
    image_id = reply.json()["id"]
    server.wait_processed(image_id)

    def add_faces(record: dict[str, Any]) -> None:
        if record.get("id") == image_id:
            record["metadata"]["faces"] = [{"x": 160, "y": 495, "width": 160, "height": 180,
                                            "confidence": 0.99}]  # fmt: skip
            record["metadata"]["focal_point"] = {"x": 240, "y": 585, "source": "faces"}

    def with_faces(route: Route) -> None:
        body = route.fetch().json()
        for record in body.get("items", [body]):
            add_faces(record)
        route.fulfill(status=200, content_type="application/json", body=json.dumps(body))

    # The record and the gallery's listing both (as on such a stack): whichever answers last
    # is what the open detail view shows.
    page.route(re.compile(rf".*/images(/{image_id})?(\?.*)?$"), with_faces)
    page.goto(f"{server.url}/dashboard#/images/{image_id}")
    face = page.locator(".detail-media .face-box")
    expect(face).to_have_count(1)
    expect(page.locator(".focal-caption")).to_contain_text("centred on the faces found")
    expect(page.locator(".detail-media .focal-marker")).to_have_attribute("data-source", "faces")
    media = page.locator(".detail-media")
    expect(media).to_have_class(re.compile(r"\bloaded\b"))
    outer, inner = media.bounding_box(), face.bounding_box()
    assert outer is not None
    assert inner is not None
    assert inner["x"] - outer["x"] == pytest.approx(outer["width"] * 0.1, abs=3)
    assert inner["y"] - outer["y"] == pytest.approx(outer["height"] * 0.55, abs=3)
    assert inner["width"] == pytest.approx(outer["width"] * 0.1, abs=3)
    assert inner["height"] == pytest.approx(outer["height"] * 0.2, abs=3)
    assert_no_console_errors(console)


def test_the_detail_view_shows_the_focal_point_and_a_click_moves_it(
    page: Page, console: Console, server: ServeProcess, artifacts: Path
) -> None:
    """The marker sits on the salient disc attention found; a click elsewhere sets the point
    there (PUT), the image is processed again and the marker comes back as the user's."""
    reply = server.client.post(f"{server.url}/images?filename=disc.png", content=F.salient(),
                               headers={"Content-Type": "image/png"})  # fmt: skip
    assert reply.status_code == 202
    image_id = reply.json()["id"]
    server.wait_processed(image_id)

    page.goto(f"{server.url}/dashboard#/images/{image_id}")
    marker = page.locator(".detail-media .focal-marker")
    expect(marker).to_have_attribute("data-source", "attention")
    x, y = int(marker.get_attribute("data-x") or -1), int(marker.get_attribute("data-y") or -1)
    assert (x - 1300) ** 2 + (y - 220) ** 2 < 70**2  # on the disc (1600 x 900, disc at 1300, 220)
    expect(page.locator(".focal-caption")).to_contain_text("found by attention")
    media = page.locator(".detail-media")
    expect(media).to_have_class(re.compile(r"\bloaded\b"))
    page.screenshot(path=artifacts / "dashboard-focal-point.png", animations="disabled")

    box = media.bounding_box()
    assert box is not None
    media.click(position={"x": box["width"] * 0.25, "y": box["height"] * 0.75})
    expect(marker).to_have_attribute("data-source", "user", timeout=PROCESSING_TIMEOUT_MS)
    expect(page.locator(".focal-caption")).to_contain_text("set by you")
    record = server.wait_processed(image_id)
    point = record["metadata"]["focal_point"]
    assert point["source"] == "user"
    assert abs(point["x"] - 400) <= 16
    assert abs(point["y"] - 675) <= 16
    expect(media).to_have_class(re.compile(r"\bloaded\b"), timeout=PROCESSING_TIMEOUT_MS)
    page.screenshot(path=artifacts / "dashboard-focal-point-moved.png", animations="disabled")
    assert_no_console_errors(console)
