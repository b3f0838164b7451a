// Module QEMUDriver: being built; see the open issue that owns it.
