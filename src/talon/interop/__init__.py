"""Exchange with other toolchains: NIR files, the JAX engine and Spyx models."""
