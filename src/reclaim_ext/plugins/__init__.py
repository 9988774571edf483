"""The classic cache algorithms as reclaim_ext plug-ins, each one file using only the public
policy API (reclaim_ext.ext). Registered under the entry-point group `reclaim_ext.policies`."""
