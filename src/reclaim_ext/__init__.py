"""reclaim-ext: one reclaim core, thin policies behind reclaim_ops, driven by page-access traces."""

__version__ = "0.1.0"
