"""How expected failures reach the user: the one-line message of an error that a command
reports instead of a traceback (the user's to fix, a dependency's, out of memory, a
failing disk), shared by the command line and the per-file reports of collections."""

from __future__ import annotations

import os
import re

from liifsr.files import named_class, one_line

# Errors that are the user's to fix: reported in one line, without a traceback.
USER_ERRORS: tuple[type[BaseException], ...] = (
    ValueError, FileNotFoundError, FileExistsError, PermissionError, IsADirectoryError, NotADirectoryError,
)
# Errors that dependencies raise in their own types about bad files, full disks or
# options they refuse, by (module, class name) along the exception's class hierarchy, so
# that checking imports nothing. Reported in one line with the dependency's own words;
# liifsr's readers and writers name the file in theirs (files.atomic_write for writes).
DEPENDENCY_ERRORS: dict[tuple[str, str], str] = {
    ("safetensors._safetensors_rust", "SafetensorError"): "safetensors",
    ("onnx.onnx_cpp2py_export.checker", "ValidationError"): "onnx",
    ("google.protobuf.message", "DecodeError"): "onnx (protobuf)",
    ("onnxruntime.capi.onnxruntime_pybind11_state", "Fail"): "onnxruntime",
    ("onnxruntime.capi.onnxruntime_pybind11_state", "InvalidArgument"): "onnxruntime",
    ("onnxruntime.capi.onnxruntime_pybind11_state", "InvalidProtobuf"): "onnxruntime",
    ("onnxruntime.capi.onnxruntime_pybind11_state", "NoSuchFile"): "onnxruntime",
    ("onnxruntime.capi.onnxruntime_pybind11_state", "RuntimeException"): "onnxruntime",
    ("torch.onnx", "OnnxExporterError"): "the ONNX exporter",
    ("PIL.Image", "DecompressionBombError"): "Pillow",
    ("PIL", "UnidentifiedImageError"): "Pillow",
    ("yaml.error", "YAMLError"): "PyYAML",
}


def error_message(error: BaseException) -> str | None:
    """The one-line message of an error that a command reports instead of a traceback
    (the user's to fix, a dependency's, out of memory, a failing disk), or None for a bug."""
    dependency = named_class(error, DEPENDENCY_ERRORS)
    if dependency is not None:
        return f"{DEPENDENCY_ERRORS[dependency]}: {one_line(error) or type(error).__name__}"
    if isinstance(error, USER_ERRORS):
        return str(error)
    if isinstance(error, OSError):  # a disk or device failing outside an atomic write
        where = f" ({os.fsdecode(error.filename)!r})" if error.filename else ""
        return f"{error.strerror or error}{where} (check the disk and the paths, and run again)"
    return memory_message(error)


def memory_message(error: BaseException) -> str | None:
    """A one-line 'out of memory' message with the amount asked for, or None for other errors.

    numpy says "Unable to allocate 4.47 GiB ...", torch's CPU allocator "you tried to
    allocate N bytes", CUDA "Tried to allocate 2.00 GiB".
    """
    text = str(error)
    is_torch_oom = isinstance(error, RuntimeError) and ("allocate" in text and "memory" in text or "out of memory" in text)
    if not isinstance(error, MemoryError) and not is_torch_oom:
        return None
    amount = ""
    if match := re.search(r"allocate (\d+) bytes", text):
        amount = f" it needed {int(match.group(1)) / 2**30:.2f} GiB more"
    elif match := re.search(r"allocate ([\d.]+ ?[KMGTP]i?B)", text, re.IGNORECASE):
        amount = f" it needed {match.group(1)} more"
    return (f"out of memory:{amount or ' an allocation failed'} (free some memory, or ask for a smaller output; "
            "--tile and --chunk bound the working memory)")
