//! End-to-end suite.

// The example plugins (guest SDK) through the real plugin engine; needs no containerd.
mod example_plugins;
