"""Simulation of the gateware on the host: Verilator builds, the Verilated core, co-simulation against
the fixed-point model, and the bit-exact comparison of their results."""
