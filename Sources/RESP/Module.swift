// Module RESP: being built; see the open issue that owns it.
