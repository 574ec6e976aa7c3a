"""The ``livelatent`` command and its subcommands.

Each subcommand parses its arguments here and hands them to the module that does the work,
imported only when that subcommand runs (so ``livelatent info`` never opens PortAudio).
A :class:`LiveLatentError` is printed as one line ``livelatent: error: ...`` with exit code 2.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import shlex
import sys
import warnings
from pathlib import Path

from . import __version__
from .errors import LiveLatentError

__all__ = ["main", "build_parser"]

# subcommand -> "module:function" that takes the parsed argparse.Namespace and returns an exit code
_HANDLERS = {
    "train": "livelatent.model.distributed:cli_train",
    "info": "livelatent.model.card:cli_info",
    "export": "livelatent.model.export:cli_export",
    "play": "livelatent.scripting:cli_play",
    "render": "livelatent.scripting:cli_render",
    "devices": "livelatent.sinks.device:cli_devices",
    "demo": "livelatent.scripting:cli_demo",
    "som": "livelatent.corpus.som:cli_som",
    "map": "livelatent.maps:cli_map",
    "live": "livelatent.repl.shell:cli_live",
    "replay": "livelatent.session.sets:cli_replay",
    "doctor": "livelatent.doctor:cli_doctor",
}
# what a missing optional module means, by the module's top-level name
_OPTIONAL = {"torch": "pip install 'livelatent[train]'", "onnx": "pip install 'livelatent[train]'",
             "IPython": "pip install ipython", "matplotlib": "pip install matplotlib"}


class _Formatter(argparse.HelpFormatter):
    """Help that shows each option's default, where it has one worth showing."""

    def _get_help_string(self, action):
        text = action.help or ""
        if (action.default is not None and action.default is not False
                and action.default != argparse.SUPPRESS and action.option_strings
                and "default" not in text):
            text += " (default: %(default)s)"
        return text


def _checked_by(parse):
    """An argparse type that checks a value with ``parse`` before any work starts, and keeps
    the text (one-line error otherwise)."""
    def check(text: str) -> str:
        try:
            parse()(text)
        except LiveLatentError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
        return text
    return check


def _som_grid():
    from .corpus.som import parse_grid
    return parse_grid


def _map_grid_parser():
    from .paths.cartography import parse_map_grid
    return parse_map_grid


_grid = _checked_by(_som_grid)
_map_grid = _checked_by(_map_grid_parser)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="livelatent", formatter_class=_Formatter,
        description="Live coding with RawAudioVAE latent audio. With no subcommand, starts the live REPL.")
    parser.add_argument("--version", action="version", version=f"livelatent {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    add = lambda name, **kw: sub.add_parser(name, formatter_class=_Formatter, **kw)   # noqa: E731
    model_help = "model pack folder or checkpoint (default: the default pack)"

    p = add("train", help="train a RawAudioVAE on audio files or folders (needs torch)")
    p.add_argument("data", nargs="+", help="audio files or folders (any rate, any channels)")
    p.add_argument("-o", "--output", required=True, help="model folder to write, e.g. models/mine")
    p.add_argument("--epochs", type=int, default=20, help="passes over the training windows")
    p.add_argument("--batch-size", type=int, default=256, help="windows per optimiser step")
    p.add_argument("--lr", type=float, default=1e-3, help="initial learning rate (Adam)")
    p.add_argument("--lr-schedule", choices=["cosine", "step", "constant"], default="cosine",
                   help="how the learning rate falls over the epochs")
    p.add_argument("--hop", type=int, default=128, help="hop between training windows (samples)")
    p.add_argument("--window", type=int, default=1024, help="samples per window the model decodes")
    p.add_argument("--hidden", type=int, default=2048, help="units of the hidden layers")
    p.add_argument("--latent", type=int, default=256, help="dimensions of the latent space")
    p.add_argument("--beta", type=float, default=1e-4, help="weight of the KL term")
    p.add_argument("--sample-rate", type=int, default=44100, help="rate the model works at (Hz)")
    p.add_argument("--val-fraction", type=float, default=0.1, help="fraction of files held out")
    p.add_argument("--val-files", nargs="*", default=None, help="explicit held-out files or folders")
    p.add_argument("--checkpoint-every", type=int, default=1, help="write a checkpoint every N epochs")
    p.add_argument("--resume", action="store_true", help="continue the run in the output folder")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto",
                   help="where to train (auto: a GPU when there is one)")
    p.add_argument("--threads", type=int, default=None,
                   help="CPU threads torch may use (default: torch's choice)")
    p.add_argument("--seed", type=int, default=0, help="seed of the weights and the batches")
    p.add_argument("--float16", action="store_true", help="store the final weights in float16")
    p.add_argument("--init", choices=["pca", "random"], default="pca",
                   help="start from the PCA of the training windows, or from random weights")
    p.add_argument("--bf16", action="store_true",
                   help="train with bfloat16 autocast (faster on CPUs with AVX-512 BF16)")
    p.add_argument("--nproc", type=int, default=1,
                   help="processes on this machine (DistributedDataParallel: gloo on CPUs, NCCL on GPUs)")
    p.add_argument("--nnodes", type=int, default=1, help="machines taking part (each runs this command)")
    p.add_argument("--node-rank", type=int, default=0, help="this machine's number, 0 to nnodes - 1")
    p.add_argument("--master-addr", default=None, help="address of machine 0 (with --nnodes)")
    p.add_argument("--master-port", type=int, default=None, help="a free port on machine 0 (with --nnodes)")

    p = add("info", help="print a model's card")
    p.add_argument("model", nargs="?", default=None, help=model_help)

    p = add("export", help="export a model for nn~ (Max/MSP, Pure Data) or ONNX (needs torch, onnx)")
    p.add_argument("model", nargs="?", default=None, help=model_help)
    p.add_argument("--to", required=True, choices=["nn~", "onnx"],
                   help="nn~: one TorchScript file; onnx: a folder with encoder.onnx and decoder.onnx")
    p.add_argument("-o", "--output", required=True, help="the .ts file (nn~) or the folder (onnx)")

    for name, helptext in (("play", "play a script live through the audio device"),
                           ("render", "render a script or a set offline to a file")):
        p = add(name, help=helptext)
        p.add_argument("script", help="a Python file that uses the livelatent API, or a set folder (render)")
        p.add_argument("--seconds", type=float, default=None,
                       help="how long (default: until the voices end, or a set's recorded end)")
        p.add_argument("--seed", type=int, default=None, help="engine seed (default: 0, or the set's)")
        p.add_argument("--model", default=None, help=model_help)
        p.add_argument("--tempo", type=float, default=None, help="initial tempo in bpm (default: 60)")
        p.add_argument("--channels", type=int, default=None,
                       help="output channels, for voices routed with out= (default: 2; a set renders its own)")
        if name == "play":
            p.add_argument("--device", default=None, help="output device: name, index or host API")
            p.add_argument("--blocksize", type=int, default=None,
                           help="frames per audio callback (default: 1024; JACK: its period)")
        else:
            p.add_argument("-o", "--output", required=True, help="output .wav or .flac")
            p.add_argument("--stems", action="store_true", help="also write one file per voice")
            p.add_argument("--rate", type=int, default=None,
                           help="sample rate of the file (resampled as a device at that rate plays; "
                                "default: the model's)")
            p.add_argument("--no-code", action="store_true",
                           help="a set: render its recorded commands and run none of its code")
            p.add_argument("--session", type=int, default=None,
                           help="a set whose journal holds several sessions: which one, from 1 "
                                "(default: the last)")

    add("devices", help="list audio output devices")
    add("doctor", help="check the rig: PortAudio, devices, JACK, BLAS, torch, the default pack")

    p = add("demo", help="play a short demo (or render it when there is no audio device)")
    p.add_argument("--seconds", type=float, default=20.0, help="how long the demo plays")
    p.add_argument("--device", default=None, help="output device: name, index or host API")
    p.add_argument("--model", default=None, help=model_help)
    p.add_argument("-o", "--output", default="renders/demo.wav", help="where to render when no device")

    p = add("som", help="build a self-organizing map of a sample corpus")
    p.add_argument("data", nargs="+", help="audio files or folders")
    p.add_argument("-o", "--output", required=True, help="SOM folder to write")
    p.add_argument("--grid", default=None, type=_grid,
                   help="rows x columns, e.g. 6x6 (default: about 5 sqrt(files) nodes, square)")
    p.add_argument("--seed", type=int, default=0, help="seed of the map's training")
    p.add_argument("--iterations", type=int, default=None,
                   help="training steps (default: 30 passes over the corpus, at least 3000)")
    p.add_argument("--features", choices=["bag", "timbre", "model"], default="timbre",
                   help="what the map sorts by: bag-of-frames descriptors, pitch-robust timbre "
                        "descriptors, or the model's latent thumbnails")
    p.add_argument("--model", default=None, help="the model of --features model (default: the default pack)")

    p = add("map", help="draw a map of the latent space: sounds and SOM clusters as labelled "
                        "points, coloured by what their decoded windows sound like")
    p.add_argument("inputs", nargs="+", metavar="SOURCES_OR_SOM",
                   help="audio files (a group each), folders (up to 64 files: a group per file; "
                        "more: a group per sub-folder) and SOM folders (a group per cluster)")
    p.add_argument("-o", "--output", required=True, help="PNG file to write, e.g. map.png")
    p.add_argument("--grid", default=None, type=_map_grid,
                   help="ROWSxCOLS, e.g. 8x8: also show in each cell the spectrogram of the window "
                        "decoded there (default: no grid)")
    p.add_argument("--model", default=None, help=model_help)
    p.add_argument("--method", choices=["auto", "pca", "umap"], default="auto",
                   help="projection to the plane (auto: UMAP when umap-learn is installed, else PCA)")
    p.add_argument("--colour", choices=["centroid", "loudness", "pitch", "group"], default="centroid",
                   help="what colours the points: a descriptor of each frame's decoded window, or its group")
    p.add_argument("--hop", type=int, default=512, help="samples between the frames mapped")
    p.add_argument("--seed", type=int, default=0, help="seed of a UMAP projection")
    p.add_argument("--base", default=None, metavar="FOLDER",
                   help="the folder a SOM's audio paths are relative to (a map made elsewhere; "
                        "default: the SOM's own records)")

    p = add("live", help="start the live-coding REPL (the default)")
    p.add_argument("--device", default=None, help="output device: name, index or host API")
    p.add_argument("--channels", type=int, default=None,
                   help="output channels the stream opens with, for voices routed with out= "
                        "(default: 2; a resumed set: its own)")
    p.add_argument("--blocksize", type=int, default=None,
                   help="frames per audio callback (default: 1024; JACK: its period)")
    p.add_argument("--inputs", type=int, default=0,
                   help="input channels the stream opens with, for live_input() (default: none)")
    p.add_argument("--lookahead", type=float, default=None, metavar="SECONDS",
                   help="audio decoded ahead (default: 0.2); less lowers live input's delay and "
                        "a change's latency, at the risk of underruns on a busy machine")
    p.add_argument("--model", default=None, help=model_help)
    p.add_argument("--set", dest="set_name", default=None,
                   help="name of this session's set (default: the date and time)")
    p.add_argument("--watch", action="append", default=[], help="pattern file or folder to hot-reload")
    p.add_argument("--offline", action="store_true", help="start without an audio device (write and render)")
    p.add_argument("--resume", default=None, metavar="SET",
                   help="carry on a set (one cut off by a crash too): rebuild the state its journal "
                        "ends in and append to it")

    p = add("replay", help="replay a saved set live, at its original timing")
    p.add_argument("set", help="set folder, e.g. sets/mygig")
    p.add_argument("--device", default=None, help="output device: name, index or host API")
    p.add_argument("--blocksize", type=int, default=None,
                   help="frames per audio callback (default: 1024; JACK: its period)")
    p.add_argument("--seconds", type=float, default=None,
                   help="how long (default: to the recorded end of the performance)")
    p.add_argument("--no-code", action="store_true",
                   help="play its recorded commands and run none of its code")
    return parser


def _one_line_warning(show):
    """``warnings.showwarning`` for the command line: livelatent's own warnings as one line,
    others as ``show`` shows them."""
    package = Path(__file__).resolve().parent

    def ours(filename) -> bool:
        if not filename or str(filename).startswith("<"):         # <string>, a REPL's cell
            return False
        try:
            return Path(filename).resolve().is_relative_to(package)
        except (OSError, ValueError, RuntimeError):
            return False

    def shown(message, category, filename, lineno, file=None, line=None):
        if not ours(filename):
            show(message, category, filename, lineno, file, line)
            return
        try:
            print(f"livelatent: warning: {message}", file=sys.stderr if file is None else file)
        except (OSError, ValueError):           # a closed stderr: as Python's own printer does
            pass
    return shown


def _command_after_options(parser, argv: list) -> str | None:
    """``livelatent -o x som DIR`` (a command after options that are not ``live``'s): the
    command line as it was meant (``som -o x DIR``), or None. Of several words that name a
    command, one right after an option is taken for that option's value (``-o map som DIR``)."""
    if not argv or not argv[0].startswith("-") or argv[0] in ("--help", "-h", "--version"):
        return None
    at = sorted((i for i, arg in enumerate(argv) if arg in _HANDLERS),
                key=lambda i: argv[i - 1].startswith("-"))       # (stable: first come first)
    if not at:                             # (``--watch x.py``: no extra parse at start-up)
        return None

    def parses(args) -> bool:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            try:
                parser.parse_args(args)
            except SystemExit:
                return False
        return True
    if parses(["live", *argv]):            # (``--watch demo``: live's, watching "demo")
        return None
    found = next((m for m in ([argv[i], *argv[:i], *argv[i + 1:]] for i in at) if parses(m)), None)
    return None if found is None else " ".join(shlex.quote(arg) for arg in found)


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    misplaced = _command_after_options(parser, argv)
    if misplaced is not None:
        print(f"usage: livelatent COMMAND [options]\nlivelatent: error: options go after the "
              f"command: livelatent {misplaced}", file=sys.stderr)
        return 2
    if not argv or argv[0].startswith("--") and argv[0] not in ("--help", "-h", "--version"):
        argv = ["live", *argv]
    args = parser.parse_args(argv)
    module_name, func_name = _HANDLERS[args.command].split(":")
    try:
        handler = getattr(importlib.import_module(module_name), func_name)
        with warnings.catch_warnings():
            warnings.showwarning = _one_line_warning(warnings.showwarning)
            return int(handler(args) or 0)
    except LiveLatentError as exc:
        print(f"livelatent: error: {exc}", file=sys.stderr)
        return 2
    except ImportError as exc:       # an optional dependency imported at a module's top
        top = (exc.name or "").split(".")[0]
        if top not in _OPTIONAL:
            raise
        print(f"livelatent: error: `livelatent {args.command}` needs {top}, which is not "
              f"installed: {_OPTIONAL[top]}", file=sys.stderr)
        return 2
    except OSError as exc:           # a file or device the system refused, in one line
        print(f"livelatent: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("livelatent: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
