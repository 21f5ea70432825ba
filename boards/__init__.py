"""Board tops and builds for open FPGA boards."""
