"""The Gradio page of ``camscope app``: controls on the left, the models × methods grid on the right.

Offline by construction: Gradio's analytics and version check are off (set before gradio is imported),
the Hugging Face hub is told it is offline, the theme uses system fonts (no Google Fonts request) and
server-side rendering (a Node process) is off; a request naming a URL as an uploaded file is refused,
never fetched. Every handler turns a user error into a message on the page. Files stay in the app's own
temporary folders, removed when it exits: Gradio's (uploads and its cache, unless ``GRADIO_TEMP_DIR`` is
set), old files deleted as the app runs, and the downloads, of which the last few runs are kept.
The work itself is :class:`camscope.app.session.Explorer`'s.
"""

from __future__ import annotations

import os
import tempfile

if not os.environ.get("GRADIO_TEMP_DIR"):  # uploads and Gradio's cache: not its shared /tmp/gradio
    _GRADIO_FILES = tempfile.TemporaryDirectory(prefix="camscope_app_gradio_")  # removed at exit
    os.environ["GRADIO_TEMP_DIR"] = _GRADIO_FILES.name

for _name, _value in (
    ("GRADIO_ANALYTICS_ENABLED", "False"),
    ("HF_HUB_OFFLINE", "1"),
    ("HF_HUB_DISABLE_TELEMETRY", "1"),
    ("GRADIO_SSR_MODE", "False"),
    ("GRADIO_MCP_SERVER", "False"),
):
    os.environ[_name] = _value

import shutil  # noqa: E402
import threading  # noqa: E402
from collections import deque  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import gradio as gr  # noqa: E402
import numpy as np  # noqa: E402
from gradio_client import utils as client_utils  # noqa: E402

from camscope.api import VIEWS  # noqa: E402
from camscope.app.session import (  # noqa: E402
    Cell,
    Explorer,
    Heads,
    Picture,
    curves_pictures,
    grid_picture,
    table_rows,
    top_class_labels,
    write_csv,
)
from camscope.core.errors import CamscopeError  # noqa: E402
from camscope.viz import draw_contour, save_png  # noqa: E402

DEFAULT_MODEL = "mini_resnet"
DEFAULT_METHOD = "gradcam"
THEME = gr.themes.Default(font=["ui-sans-serif", "system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"])
CSS = "#status p {font-size: 1.05em} #grid img {image-rendering: pixelated}"


#: Gradio deletes the files of this app older than an hour, every ten minutes (and all of them on exit)
DELETE_CACHE = (600, 3600)
#: runs whose download files are kept (Gradio has copied each run's into its cache as it answered)
KEEP_RUNS = 8


def _refuse_url(url_or_file_path: str | Path | None) -> None:
    if url_or_file_path is not None and client_utils.is_http_url_like(str(url_or_file_path)):
        raise gr.Error("only uploaded files are accepted, not URLs: the app fetches nothing", print_exception=False)


def upload_only(box: gr.File) -> gr.File:
    """``box`` taking uploads only: a request naming a URL as its file is refused, never fetched (Gradio
    downloads such a URL: an outbound request that a local page must never cause).

    The component's own cache methods are wrapped: a subclass of a Gradio component would make Gradio write
    a ``.pyi`` file beside this module when the class is defined.
    """
    move, async_move = box.move_resource_to_block_cache, box.async_move_resource_to_block_cache

    def refusing(url_or_file_path: str | Path | None) -> str | None:
        _refuse_url(url_or_file_path)
        return move(url_or_file_path)

    async def async_refusing(url_or_file_path: str | Path | None) -> str | None:
        _refuse_url(url_or_file_path)
        return await async_move(url_or_file_path)

    box.move_resource_to_block_cache = refusing  # type: ignore[method-assign]
    box.async_move_resource_to_block_cache = async_refusing  # type: ignore[method-assign]
    return box


class Downloads:
    """One folder per run for its download files, inside one folder of the app's (removed at exit); only
    the last ``keep`` runs' folders are kept, so a long-lived server leaves no trail."""

    def __init__(self, keep: int = KEEP_RUNS) -> None:
        self.keep = keep
        self._root = tempfile.TemporaryDirectory(prefix="camscope_app_")
        self._runs: deque[Path] = deque()
        self._lock = threading.Lock()

    @property
    def root(self) -> Path:
        return Path(self._root.name)

    def folder(self) -> Path:
        with self._lock:
            path = Path(tempfile.mkdtemp(prefix="run_", dir=self._root.name))
            self._runs.append(path)
            while len(self._runs) > self.keep:
                shutil.rmtree(self._runs.popleft(), ignore_errors=True)
        return path

    def close(self) -> None:
        self._root.cleanup()


def _preview(picture: Picture | None) -> np.ndarray | None:
    if picture is None:
        return None
    return picture.pixels if picture.mask is None else draw_contour(picture.pixels, picture.mask)


def _say(*lines: str) -> str:
    return "\n\n".join(line for line in lines if line)


def _heads_update(heads: list[Heads]) -> Any:
    """The per-head gallery: one picture per token model, hidden when not asked for."""
    pictures = [(h.picture, h.model) for h in heads if h.picture is not None]
    return gr.update(value=pictures or None, visible=bool(heads))


def build_app(explorer: Explorer, downloads: Downloads | None = None) -> gr.Blocks:
    """The page, wired to ``explorer``; handlers are closures so several apps can live in one process.
    ``downloads``: where each run's grid PNG and scores CSV go (default: a folder of this app's)."""
    downloads = downloads or Downloads()
    choices = explorer.model_choices()
    ready = [c.name for c in choices if c.ready]
    missing = [c for c in choices if not c.ready]
    methods = explorer.method_choices()
    first_scene = explorer.scene(0)

    def generate_scene(seed: float | None) -> tuple[Any, Any, str]:
        try:
            picture = explorer.scene(int(seed or 0))
        except CamscopeError as exc:
            return gr.skip(), gr.skip(), f"⚠️ {exc}"
        return picture, _preview(picture), f"Generated {picture.name}; its true object is outlined in white."

    def upload(path: str | None) -> tuple[Any, Any, str]:
        if not path:
            return gr.skip(), gr.skip(), ""
        try:
            picture = explorer.open_image(path)
        except CamscopeError as exc:
            return gr.skip(), gr.skip(), f"⚠️ {exc}"
        return picture, _preview(picture), _say(f"Loaded {picture.name}.", *(f"ℹ️ {n}" for n in picture.notes))

    def upload_reference(path: str | None) -> tuple[Any, str]:
        if not path:
            return None, "Label-free targets use each image's own embedding."
        try:
            reference = explorer.open_image(path)
        except CamscopeError as exc:
            return None, f"⚠️ reference image: {exc}"
        return reference, f"Label-free targets: cosine similarity to the embedding of {reference.name}."

    def run(
        models: list[str],
        chosen: list[str],
        picture: Picture | None,
        target: str,
        view: str,
        show_curves: bool,
        label_free: bool,
        reference: Picture | None,
        show_heads: bool,
        request: gr.Request,
        progress: gr.Progress = gr.Progress(),  # noqa: B008  (Gradio's injection idiom)
    ) -> Any:
        cells: list[Cell] = []
        total = len(models or []) * len(chosen or [])
        # "stop" cancels this generator and sets the flag: the running cell ends within one chunk of work
        cancel = explorer.start_run(request.session_hash or "")

        def report(done: int, steps: int, what: str) -> None:
            progress((done, steps), desc=f"cell {len(cells) + 1} / {total} · {what}")

        try:
            for cell in explorer.run(
                models or [], chosen or [], picture, target or "", cancel, report,
                label_free=bool(label_free), reference=reference if label_free else None,
            ):  # fmt: skip
                cells.append(cell)
                assert picture is not None
                status = f"{len(cells)} / {total} done ({cell.model} × {cell.method}: {cell.seconds:.1f} s)"
                if len(cells) < total:
                    yield _outputs(cells, picture, view, show_curves, status, [], final=False)
            heads = (
                [explorer.heads(m, picture, bool(label_free)) for m in models]
                if show_heads and cells and picture
                else []
            )
            yield _outputs(cells, picture, view, show_curves, status if cells else "", heads, final=True)
        except CamscopeError as exc:
            yield _outputs(cells, picture, view, show_curves, f"⚠️ {exc}", [], final=True)

    def stop_run(request: gr.Request) -> str:
        if explorer.stop_run(request.session_hash or ""):
            return "⏹️ Stopped: the running cell ends within one chunk of work; finished cells stay cached."
        return "Nothing is running."

    def _outputs(
        cells: list[Cell],
        picture: Picture | None,
        view: str,
        show_curves: bool,
        status: str,
        heads: list[Heads],
        final: bool,
    ) -> tuple[Any, ...]:
        if not cells or picture is None:
            return status, gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip()
        errors = [f"⚠️ {c.model} × {c.method}: {c.error}" for c in cells if c.error]
        errors += [f"ℹ️ {h.model}, attention heads: {h.error}" for h in heads if h.error]
        notes = [f"ℹ️ {c.model} × {c.method}: {n}" for c in cells for n in c.notes]
        grid = grid_picture(cells, picture, view)
        rows = table_rows(cells)
        table = [[row[k] for k in rows[0]] for row in rows]
        curves = curves_pictures(cells) if show_curves else []
        files: Any = gr.skip()
        labels: Any = gr.skip()
        if final:
            folder = downloads.folder()
            files = [str(save_png(grid, folder / "camscope_grid.png")), str(write_csv(cells, folder / "camscope.csv"))]
            labels = gr.update(choices=top_class_labels(cells), value=None)
        return (
            _say(status, *errors, *notes),
            grid,
            gr.update(value=table, headers=list(rows[0])),
            gr.update(value=curves or None, visible=show_curves),
            files,
            labels,
            _heads_update(heads) if final else gr.skip(),
        )

    with gr.Blocks(title="camscope explorer", analytics_enabled=False, delete_cache=DELETE_CACHE) as app:
        picture_state = gr.State(first_scene)
        reference_state = gr.State(None)
        gr.Markdown("## camscope explorer — what do the models look at?")
        with gr.Row():
            with gr.Column(scale=1, min_width=320):
                model_box = gr.CheckboxGroup(ready, value=[DEFAULT_MODEL] if DEFAULT_MODEL in ready else ready[:1],
                                             label="models", elem_id="models")  # fmt: skip
                if missing:
                    with gr.Accordion(f"{len(missing)} models without weights", open=False):
                        gr.Markdown("\n".join(f"- **{c.name}**: {c.note}" for c in missing))
                method_box = gr.CheckboxGroup(
                    methods, value=[DEFAULT_METHOD] if DEFAULT_METHOD in methods else methods[:1], label="methods"
                )
                with gr.Group():
                    preview = gr.Image(_preview(first_scene), label="image to explain", interactive=False, height=220)
                    with gr.Row():
                        seed = gr.Number(0, label="scene seed", precision=0, minimum=0)
                        scene_button = gr.Button("generate scene", elem_id="scene")
                    upload_box = upload_only(gr.File(label="or upload an image", file_count="single", elem_id="upload"))
                target = gr.Textbox(
                    label="target class (name or index; a detector's box:X1,Y1,X2,Y2 in the picture's pixels; "
                    "empty: each model's top-1)",
                    elem_id="target",
                )
                with gr.Group():
                    label_free = gr.Checkbox(
                        False, label="label-free: explain each model's embedding (backbone, no classifier)",
                        elem_id="label_free",
                    )  # fmt: skip
                    reference_box = upload_only(gr.File(
                        label="label-free reference image (optional; empty: each image's own embedding)",
                        file_count="single", elem_id="reference",
                    ))  # fmt: skip
                view = gr.Radio(list(VIEWS), value="original", label="draw the map over")
                show_curves = gr.Checkbox(False, label="deletion / insertion curves")
                show_heads = gr.Checkbox(False, label="attention heads of token models", elem_id="show_heads")
                with gr.Row():
                    go = gr.Button("explain", variant="primary", elem_id="explain")
                    stop = gr.Button("stop", variant="stop", elem_id="stop")
            with gr.Column(scale=2):
                status = gr.Markdown("Choose models and methods, then **explain**.", elem_id="status")
                grid = gr.Image(label="models × methods", interactive=False, format="png", elem_id="grid")
                top = gr.Radio([], label="top classes of the first model: click one to explain it", elem_id="top")
                table = gr.Dataframe(label="scores", interactive=False, elem_id="scores", wrap=True)
                curves = gr.Gallery(label="curves", visible=False, columns=2, elem_id="curves")
                heads = gr.Gallery(
                    label="attention heads: each head's class-token attention (last block) over the model's input",
                    visible=False, columns=1, object_fit="contain", height="auto", elem_id="heads",
                )  # fmt: skip
                files = gr.File(label="downloads: grid PNG and scores CSV", file_count="multiple", elem_id="downloads")

        inputs = [
            model_box,
            method_box,
            picture_state,
            target,
            view,
            show_curves,
            label_free,
            reference_state,
            show_heads,
        ]
        outputs = [status, grid, table, curves, files, top, heads]
        scene_button.click(generate_scene, seed, [picture_state, preview, status])
        upload_box.upload(upload, upload_box, [picture_state, preview, status])
        reference_box.upload(upload_reference, reference_box, [reference_state, status])
        reference_box.clear(lambda: (None, "Label-free targets use each image's own embedding."), None,
                            [reference_state, status])  # fmt: skip
        running = go.click(run, inputs, outputs)
        redraw = view.change(run, inputs, outputs)  # cached cells: only the pictures are redrawn
        stop.click(stop_run, None, status, cancels=[running, redraw])
        top.input(lambda index: str(index) if index is not None else gr.skip(), top, target).then(run, inputs, outputs)
    blocks: gr.Blocks = app
    return blocks


def serve(explorer: Explorer, host: str = "127.0.0.1", port: int = 7860, workers: int | None = None) -> None:
    """Start the page (blocking); one queue worker per CPU core by default."""
    app = build_app(explorer)
    app.queue(default_concurrency_limit=workers or os.cpu_count() or 1)
    try:
        _launch(app, host, port)
    except OSError as exc:  # the port is taken, the address is not this machine's, ...
        raise CamscopeError(f"cannot serve on {host}:{port}: {exc}") from None
    print(f"camscope app: http://{host}:{port}/  (Ctrl+C stops it)", flush=True)  # printed once it listens
    app.block_thread()


def _launch(app: gr.Blocks, host: str, port: int) -> None:
    app.launch(
        server_name=host,
        server_port=port,
        share=False,
        quiet=True,
        show_error=False,
        ssr_mode=False,
        theme=THEME,
        css=CSS,
        footer_links=[],
        max_file_size="50mb",
        prevent_thread_lock=True,
    )
