"""clustercls: which protected cluster (textiles & fashion, food & beverages, crafts) a
marketplace listing belongs to, how sure the model is, and what enforcement should do.

    from clustercls import load_model
    model = load_model()                 # newest model under models/
    model.predict(["Kemeja Batik Pria"])  # one row per title, in order
"""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["Model", "__version__", "load_model"]


def __getattr__(name: str):
    # Lazy, so `import clustercls` (and the CLI's --help) stays fast and side-effect free.
    if name in ("load_model", "Model"):
        from clustercls import predict

        return getattr(predict, name)
    raise AttributeError(f"module 'clustercls' has no attribute {name!r}")
