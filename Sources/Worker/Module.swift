// Module Worker: being built; see the open issue that owns it.
