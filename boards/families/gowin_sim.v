// Behavioural models of the Gowin cells that Yosys's share/gowin has only as black boxes, for
// gate-level simulation with Verilator (nfloop.boards.netlist): the block RAMs that Yosys's memory
// mapping makes (share/gowin/brams.txt, brams_map.v: SP, SPX9, SDPB, SDPX9B, DPB, DPX9B) and
// MULT18X18. Each keeps the cell's function in the modes those mappings and nfloop's gateware use,
// and stops the simulation at its start when a netlist sets any other mode.

// One BSRAM block as Yosys's mapping describes it: 2048 bytes of 8 bits (SP, SDPB, DPB) or of 9
// bits (the X9 cells), in two ports:
// - widths 1, 2, 4 and 8 (9) address byte AD[13:3], the bit, pair or nibble chosen by AD[2:0],
//   AD[2:1] or AD[2]; 16 (18) is the byte pair AD[13:4], 32 (36) the four bytes AD[13:5], low byte
//   on D[7:0] (D[8:0]), written with byte enables AD[1:0] or AD[3:0];
// - WRITE_MODE on a port that writes: 0 keeps its output, 1 shows the new word, 2 the old one; a
//   port reading the word the other port writes in the same cycle gets the old word;
// - READ_MODE 0 (no output register): the output is the read register, RESET clears it,
//   synchronously or (RESET_MODE "ASYNC") at once; CE holds the port; BLKSEL must equal BLK_SEL;
// - INIT_RAM_xx holds 32 bytes, byte 0 lowest.
module nfloop_gowin_bsram #(
  parameter BYTE = 9, WIDTH_A = 36, WIDTH_B = 36, WRITE_MODE_A = 0, WRITE_MODE_B = 0,
  parameter READ_MODE_A = 0, READ_MODE_B = 0, BLK_SEL_A = 0, BLK_SEL_B = 0, RESET_MODE = "SYNC",
  parameter [18431:0] INIT = 0
) (
  input clka, cea, wrea, reseta, input [2:0] blksela, input [13:0] ada, input [35:0] dia, output reg [35:0] doa,
  input clkb, ceb, wreb, resetb, input [2:0] blkselb, input [13:0] adb, input [35:0] dib, output reg [35:0] dob
);
  reg [BYTE-1:0] bytes [0:2047];
  integer i;
  function ok_width(input integer width);
    ok_width = width == 1 || width == 2 || width == 4 || width == BYTE || width == 2 * BYTE || width == 4 * BYTE;
  endfunction
  initial begin
    if (!ok_width(WIDTH_A) || !ok_width(WIDTH_B) || READ_MODE_A != 0 || READ_MODE_B != 0
        || WRITE_MODE_A > 2 || WRITE_MODE_B > 2 || (RESET_MODE != "SYNC" && RESET_MODE != "ASYNC")) begin
      $display("Gowin BSRAM %m: a mode this model does not have (nfloop.boards.netlist models Yosys's mappings only)");
      $finish;
    end
    for (i = 0; i < 2048; i = i + 1)
      bytes[i] = INIT[9 * i +: BYTE];
    doa = 36'd0;
    dob = 36'd0;
  end

  // the word at `address` for a port of `width`, from the bytes as they are before this clock edge
  function [35:0] read_word(input integer width, input [13:0] address);
    reg [BYTE-1:0] b;
    begin
      b = bytes[address[13:3]];
      read_word = 36'd0;
      if (width == 1) read_word[0] = b[address[2:0]];
      else if (width == 2) read_word[1:0] = b[{address[2:1], 1'b0} +: 2];
      else if (width == 4) read_word[3:0] = b[{address[2], 2'b0} +: 4];
      else if (width == BYTE) read_word[BYTE-1:0] = b;
      else if (width == 2 * BYTE)
        read_word[2*BYTE-1:0] = {bytes[{address[13:4], 1'b1}], bytes[{address[13:4], 1'b0}]};
      else
        read_word[4*BYTE-1:0] = {bytes[{address[13:5], 2'd3}], bytes[{address[13:5], 2'd2}],
                                 bytes[{address[13:5], 2'd1}], bytes[{address[13:5], 2'd0}]};
    end
  endfunction

  // `word` written at `address`, byte lanes enabled by the address's low bits (widths of 2 and 4 bytes)
  task write_word(input integer width, input [13:0] address, input [35:0] word);
    reg [BYTE-1:0] b;
    begin
      b = bytes[address[13:3]];
      if (width == 1) begin b[address[2:0]] = word[0]; bytes[address[13:3]] <= b; end
      else if (width == 2) begin b[{address[2:1], 1'b0} +: 2] = word[1:0]; bytes[address[13:3]] <= b; end
      else if (width == 4) begin b[{address[2], 2'b0} +: 4] = word[3:0]; bytes[address[13:3]] <= b; end
      else if (width == BYTE) bytes[address[13:3]] <= word[BYTE-1:0];
      else if (width == 2 * BYTE) begin
        if (address[0]) bytes[{address[13:4], 1'b0}] <= word[BYTE-1:0];
        if (address[1]) bytes[{address[13:4], 1'b1}] <= word[2*BYTE-1:BYTE];
      end else begin
        if (address[0]) bytes[{address[13:5], 2'd0}] <= word[BYTE-1:0];
        if (address[1]) bytes[{address[13:5], 2'd1}] <= word[2*BYTE-1:BYTE];
        if (address[2]) bytes[{address[13:5], 2'd2}] <= word[3*BYTE-1:2*BYTE];
        if (address[3]) bytes[{address[13:5], 2'd3}] <= word[4*BYTE-1:3*BYTE];
      end
    end
  endtask

  // the word a port shows after writing `word` over `old` (write-through with byte enables)
  function [35:0] merged(input [35:0] old, input [35:0] word, input [13:0] address, input integer width);
    integer k;
    begin
      merged = word;
      for (k = 0; k < 4; k = k + 1)
        if (width >= 2 * BYTE && !address[k]) merged[k * BYTE +: BYTE] = old[k * BYTE +: BYTE];
    end
  endfunction

  wire async_a = RESET_MODE == "ASYNC" && reseta;
  wire async_b = RESET_MODE == "ASYNC" && resetb;
  reg [35:0] old_a, old_b;
  always @(posedge clka or posedge async_a) begin
    if (async_a || (RESET_MODE == "SYNC" && reseta))
      doa <= 36'd0;
    else if (cea && blksela == BLK_SEL_A) begin
      old_a = read_word(WIDTH_A, ada);
      if (wrea) begin
        write_word(WIDTH_A, ada, dia);
        if (WRITE_MODE_A == 1) doa <= merged(old_a, dia, ada, WIDTH_A);
        else if (WRITE_MODE_A == 2) doa <= old_a;
      end else
        doa <= old_a;
    end
  end
  always @(posedge clkb or posedge async_b) begin
    if (async_b || (RESET_MODE == "SYNC" && resetb))
      dob <= 36'd0;
    else if (ceb && blkselb == BLK_SEL_B) begin
      old_b = read_word(WIDTH_B, adb);
      if (wreb) begin
        write_word(WIDTH_B, adb, dib);
        if (WRITE_MODE_B == 1) dob <= merged(old_b, dib, adb, WIDTH_B);
        else if (WRITE_MODE_B == 2) dob <= old_b;
      end else
        dob <= old_b;
    end
  end
endmodule

// INIT_RAM_00 .. INIT_RAM_3F in one vector, each widened to 9 bits a byte (8-bit cells' bytes padded)
`define NFLOOP_GOWIN_INIT_PARAMETERS(bits, byte_bits) \
  parameter [bits-1:0] INIT_RAM_00 = 0, INIT_RAM_01 = 0, INIT_RAM_02 = 0, INIT_RAM_03 = 0; \
  parameter [bits-1:0] INIT_RAM_04 = 0, INIT_RAM_05 = 0, INIT_RAM_06 = 0, INIT_RAM_07 = 0; \
  parameter [bits-1:0] INIT_RAM_08 = 0, INIT_RAM_09 = 0, INIT_RAM_0A = 0, INIT_RAM_0B = 0; \
  parameter [bits-1:0] INIT_RAM_0C = 0, INIT_RAM_0D = 0, INIT_RAM_0E = 0, INIT_RAM_0F = 0; \
  parameter [bits-1:0] INIT_RAM_10 = 0, INIT_RAM_11 = 0, INIT_RAM_12 = 0, INIT_RAM_13 = 0; \
  parameter [bits-1:0] INIT_RAM_14 = 0, INIT_RAM_15 = 0, INIT_RAM_16 = 0, INIT_RAM_17 = 0; \
  parameter [bits-1:0] INIT_RAM_18 = 0, INIT_RAM_19 = 0, INIT_RAM_1A = 0, INIT_RAM_1B = 0; \
  parameter [bits-1:0] INIT_RAM_1C = 0, INIT_RAM_1D = 0, INIT_RAM_1E = 0, INIT_RAM_1F = 0; \
  parameter [bits-1:0] INIT_RAM_20 = 0, INIT_RAM_21 = 0, INIT_RAM_22 = 0, INIT_RAM_23 = 0; \
  parameter [bits-1:0] INIT_RAM_24 = 0, INIT_RAM_25 = 0, INIT_RAM_26 = 0, INIT_RAM_27 = 0; \
  parameter [bits-1:0] INIT_RAM_28 = 0, INIT_RAM_29 = 0, INIT_RAM_2A = 0, INIT_RAM_2B = 0; \
  parameter [bits-1:0] INIT_RAM_2C = 0, INIT_RAM_2D = 0, INIT_RAM_2E = 0, INIT_RAM_2F = 0; \
  parameter [bits-1:0] INIT_RAM_30 = 0, INIT_RAM_31 = 0, INIT_RAM_32 = 0, INIT_RAM_33 = 0; \
  parameter [bits-1:0] INIT_RAM_34 = 0, INIT_RAM_35 = 0, INIT_RAM_36 = 0, INIT_RAM_37 = 0; \
  parameter [bits-1:0] INIT_RAM_38 = 0, INIT_RAM_39 = 0, INIT_RAM_3A = 0, INIT_RAM_3B = 0; \
  parameter [bits-1:0] INIT_RAM_3C = 0, INIT_RAM_3D = 0, INIT_RAM_3E = 0, INIT_RAM_3F = 0; \
  localparam [bits*64-1:0] INIT_ALL = { \
    INIT_RAM_3F, INIT_RAM_3E, INIT_RAM_3D, INIT_RAM_3C, INIT_RAM_3B, INIT_RAM_3A, INIT_RAM_39, INIT_RAM_38, \
    INIT_RAM_37, INIT_RAM_36, INIT_RAM_35, INIT_RAM_34, INIT_RAM_33, INIT_RAM_32, INIT_RAM_31, INIT_RAM_30, \
    INIT_RAM_2F, INIT_RAM_2E, INIT_RAM_2D, INIT_RAM_2C, INIT_RAM_2B, INIT_RAM_2A, INIT_RAM_29, INIT_RAM_28, \
    INIT_RAM_27, INIT_RAM_26, INIT_RAM_25, INIT_RAM_24, INIT_RAM_23, INIT_RAM_22, INIT_RAM_21, INIT_RAM_20, \
    INIT_RAM_1F, INIT_RAM_1E, INIT_RAM_1D, INIT_RAM_1C, INIT_RAM_1B, INIT_RAM_1A, INIT_RAM_19, INIT_RAM_18, \
    INIT_RAM_17, INIT_RAM_16, INIT_RAM_15, INIT_RAM_14, INIT_RAM_13, INIT_RAM_12, INIT_RAM_11, INIT_RAM_10, \
    INIT_RAM_0F, INIT_RAM_0E, INIT_RAM_0D, INIT_RAM_0C, INIT_RAM_0B, INIT_RAM_0A, INIT_RAM_09, INIT_RAM_08, \
    INIT_RAM_07, INIT_RAM_06, INIT_RAM_05, INIT_RAM_04, INIT_RAM_03, INIT_RAM_02, INIT_RAM_01, INIT_RAM_00}; \
  function [18431:0] init_bytes(input integer unused); \
    integer k; \
    begin \
      init_bytes = 0; \
      for (k = 0; k < 2048; k = k + 1) init_bytes[9 * k +: 9] = {1'b0, INIT_ALL[byte_bits * k +: byte_bits]}; \
    end \
  endfunction

module SP(output [31:0] DO, input [31:0] DI, input [2:0] BLKSEL, input [13:0] AD, input WRE, CLK, CE, OCE, RESET);
  parameter READ_MODE = 1'b0;
  parameter WRITE_MODE = 2'b00;
  parameter BIT_WIDTH = 32;
  parameter BLK_SEL = 3'b000;
  parameter RESET_MODE = "SYNC";
  `NFLOOP_GOWIN_INIT_PARAMETERS(256, 8)
  wire [35:0] out;
  assign DO = out[31:0];
  nfloop_gowin_bsram #(.BYTE(8), .WIDTH_A(BIT_WIDTH), .WIDTH_B(BIT_WIDTH), .WRITE_MODE_A(WRITE_MODE),
                       .READ_MODE_A(READ_MODE), .BLK_SEL_A(BLK_SEL), .RESET_MODE(RESET_MODE), .INIT(init_bytes(0)))
    block (.clka(CLK), .cea(CE), .wrea(WRE), .reseta(RESET), .blksela(BLKSEL), .ada(AD), .dia({4'd0, DI}), .doa(out),
           .clkb(1'b0), .ceb(1'b0), .wreb(1'b0), .resetb(1'b0), .blkselb(3'd0), .adb(14'd0), .dib(36'd0), .dob());
endmodule

module SPX9(output [35:0] DO, input [35:0] DI, input [2:0] BLKSEL, input [13:0] AD, input WRE, CLK, CE, OCE, RESET);
  parameter READ_MODE = 1'b0;
  parameter WRITE_MODE = 2'b00;
  parameter BIT_WIDTH = 36;
  parameter BLK_SEL = 3'b000;
  parameter RESET_MODE = "SYNC";
  `NFLOOP_GOWIN_INIT_PARAMETERS(288, 9)
  nfloop_gowin_bsram #(.BYTE(9), .WIDTH_A(BIT_WIDTH), .WIDTH_B(BIT_WIDTH), .WRITE_MODE_A(WRITE_MODE),
                       .READ_MODE_A(READ_MODE), .BLK_SEL_A(BLK_SEL), .RESET_MODE(RESET_MODE), .INIT(init_bytes(0)))
    block (.clka(CLK), .cea(CE), .wrea(WRE), .reseta(RESET), .blksela(BLKSEL), .ada(AD), .dia(DI), .doa(DO),
           .clkb(1'b0), .ceb(1'b0), .wreb(1'b0), .resetb(1'b0), .blkselb(3'd0), .adb(14'd0), .dib(36'd0), .dob());
endmodule

// Semi-dual-port: port A writes whenever CEA is high (Yosys ties write enables to it), port B reads.
module SDPB(input CLKA, CEA, CLKB, CEB, OCE, RESETA, RESETB, input [13:0] ADA, ADB, input [2:0] BLKSELA, BLKSELB,
            input [31:0] DI, output [31:0] DO);
  parameter READ_MODE = 1'b0;
  parameter BIT_WIDTH_0 = 32;
  parameter BIT_WIDTH_1 = 32;
  parameter BLK_SEL_0 = 3'b000;
  parameter BLK_SEL_1 = 3'b000;
  parameter RESET_MODE = "SYNC";
  `NFLOOP_GOWIN_INIT_PARAMETERS(256, 8)
  wire [35:0] out, in = DI;
  assign DO = out[31:0];
  nfloop_gowin_bsram #(.BYTE(8), .WIDTH_A(BIT_WIDTH_0), .WIDTH_B(BIT_WIDTH_1), .READ_MODE_B(READ_MODE),
                       .BLK_SEL_A(BLK_SEL_0), .BLK_SEL_B(BLK_SEL_1), .RESET_MODE(RESET_MODE), .INIT(init_bytes(0)))
    block (.clka(CLKA), .cea(CEA), .wrea(1'b1), .reseta(1'b0), .blksela(BLKSELA), .ada(ADA), .dia(in), .doa(),
           .clkb(CLKB), .ceb(CEB), .wreb(1'b0), .resetb(RESETB), .blkselb(BLKSELB), .adb(ADB), .dib(36'd0), .dob(out));
endmodule

module SDPX9B(input CLKA, CEA, CLKB, CEB, OCE, RESETA, RESETB, input [13:0] ADA, ADB, input [2:0] BLKSELA, BLKSELB,
            input [35:0] DI, output [35:0] DO);
  parameter READ_MODE = 1'b0;
  parameter BIT_WIDTH_0 = 36;
  parameter BIT_WIDTH_1 = 36;
  parameter BLK_SEL_0 = 3'b000;
  parameter BLK_SEL_1 = 3'b000;
  parameter RESET_MODE = "SYNC";
  `NFLOOP_GOWIN_INIT_PARAMETERS(288, 9)
  wire [35:0] out, in = DI;
  assign DO = out[35:0];
  nfloop_gowin_bsram #(.BYTE(9), .WIDTH_A(BIT_WIDTH_0), .WIDTH_B(BIT_WIDTH_1), .READ_MODE_B(READ_MODE),
                       .BLK_SEL_A(BLK_SEL_0), .BLK_SEL_B(BLK_SEL_1), .RESET_MODE(RESET_MODE), .INIT(init_bytes(0)))
    block (.clka(CLKA), .cea(CEA), .wrea(1'b1), .reseta(1'b0), .blksela(BLKSELA), .ada(ADA), .dia(in), .doa(),
           .clkb(CLKB), .ceb(CEB), .wreb(1'b0), .resetb(RESETB), .blkselb(BLKSELB), .adb(ADB), .dib(36'd0), .dob(out));
endmodule

// True dual-port.
module DPB(input CLKA, CEA, CLKB, CEB, OCEA, OCEB, RESETA, RESETB, WREA, WREB, input [13:0] ADA, ADB,
           input [2:0] BLKSELA, BLKSELB, input [15:0] DIA, DIB, output [15:0] DOA, DOB);
  parameter READ_MODE0 = 1'b0;
  parameter READ_MODE1 = 1'b0;
  parameter WRITE_MODE0 = 2'b00;
  parameter WRITE_MODE1 = 2'b00;
  parameter BIT_WIDTH_0 = 16;
  parameter BIT_WIDTH_1 = 16;
  parameter BLK_SEL_0 = 3'b000;
  parameter BLK_SEL_1 = 3'b000;
  parameter RESET_MODE = "SYNC";
  `NFLOOP_GOWIN_INIT_PARAMETERS(256, 8)
  wire [35:0] out_a, out_b, in_a = DIA, in_b = DIB;
  assign DOA = out_a[15:0];
  assign DOB = out_b[15:0];
  nfloop_gowin_bsram #(.BYTE(8), .WIDTH_A(BIT_WIDTH_0), .WIDTH_B(BIT_WIDTH_1), .WRITE_MODE_A(WRITE_MODE0),
                       .WRITE_MODE_B(WRITE_MODE1), .READ_MODE_A(READ_MODE0), .READ_MODE_B(READ_MODE1),
                       .BLK_SEL_A(BLK_SEL_0), .BLK_SEL_B(BLK_SEL_1), .RESET_MODE(RESET_MODE), .INIT(init_bytes(0)))
    block (.clka(CLKA), .cea(CEA), .wrea(WREA), .reseta(RESETA), .blksela(BLKSELA), .ada(ADA), .dia(in_a), .doa(out_a),
           .clkb(CLKB), .ceb(CEB), .wreb(WREB), .resetb(RESETB), .blkselb(BLKSELB), .adb(ADB), .dib(in_b), .dob(out_b));
endmodule

module DPX9B(input CLKA, CEA, CLKB, CEB, OCEA, OCEB, RESETA, RESETB, WREA, WREB, input [13:0] ADA, ADB,
           input [2:0] BLKSELA, BLKSELB, input [17:0] DIA, DIB, output [17:0] DOA, DOB);
  parameter READ_MODE0 = 1'b0;
  parameter READ_MODE1 = 1'b0;
  parameter WRITE_MODE0 = 2'b00;
  parameter WRITE_MODE1 = 2'b00;
  parameter BIT_WIDTH_0 = 18;
  parameter BIT_WIDTH_1 = 18;
  parameter BLK_SEL_0 = 3'b000;
  parameter BLK_SEL_1 = 3'b000;
  parameter RESET_MODE = "SYNC";
  `NFLOOP_GOWIN_INIT_PARAMETERS(288, 9)
  wire [35:0] out_a, out_b, in_a = DIA, in_b = DIB;
  assign DOA = out_a[17:0];
  assign DOB = out_b[17:0];
  nfloop_gowin_bsram #(.BYTE(9), .WIDTH_A(BIT_WIDTH_0), .WIDTH_B(BIT_WIDTH_1), .WRITE_MODE_A(WRITE_MODE0),
                       .WRITE_MODE_B(WRITE_MODE1), .READ_MODE_A(READ_MODE0), .READ_MODE_B(READ_MODE1),
                       .BLK_SEL_A(BLK_SEL_0), .BLK_SEL_B(BLK_SEL_1), .RESET_MODE(RESET_MODE), .INIT(init_bytes(0)))
    block (.clka(CLKA), .cea(CEA), .wrea(WREA), .reseta(RESETA), .blksela(BLKSELA), .ada(ADA), .dia(in_a), .doa(out_a),
           .clkb(CLKB), .ceb(CEB), .wreb(WREB), .resetb(RESETB), .blkselb(BLKSELB), .adb(ADB), .dib(in_b), .dob(out_b));
endmodule


// MULT18X18 with its A, B and output registers (AREG, BREG, OUT_REG) or without, as nfloop's Gowin
// DSP block (nfloop.boards.families.gowin.mult18x18) and Yosys's dsp_map.v set it: no pipeline
// register, operands from A and B (ASEL = BSEL = 0), registers on CLK with CE and RESET.
module MULT18X18(input [17:0] A, SIA, B, SIB, input ASIGN, BSIGN, ASEL, BSEL, CE, CLK, RESET,
                 output [35:0] DOUT, output [17:0] SOA, SOB);
  parameter AREG = 1'b0;
  parameter BREG = 1'b0;
  parameter OUT_REG = 1'b0;
  parameter PIPE_REG = 1'b0;
  parameter ASIGN_REG = 1'b0;
  parameter BSIGN_REG = 1'b0;
  parameter SOA_REG = 1'b0;
  parameter MULT_RESET_MODE = "SYNC";
  initial begin
    if (PIPE_REG != 0 || SOA_REG != 0 || ASIGN_REG != AREG && ASIGN_REG != 0 || BSIGN_REG != BREG && BSIGN_REG != 0
        || (MULT_RESET_MODE != "SYNC" && MULT_RESET_MODE != "ASYNC")) begin
      $display("MULT18X18 %m: a mode this model does not have (nfloop.boards.netlist models Yosys's mappings only)");
      $finish;
    end
  end
  reg [17:0] a_reg = 0, b_reg = 0;
  reg asign_reg = 0, bsign_reg = 0;
  reg [35:0] out_reg = 0;
  wire async = MULT_RESET_MODE == "ASYNC" && RESET;
  wire [17:0] a = AREG ? a_reg : A;
  wire [17:0] b = BREG ? b_reg : B;
  wire asign = ASIGN_REG ? asign_reg : ASIGN;
  wire bsign = BSIGN_REG ? bsign_reg : BSIGN;
  wire signed [36:0] a_wide = {{19{asign & a[17]}}, a};
  wire signed [36:0] b_wide = {{19{bsign & b[17]}}, b};
  wire signed [36:0] full = a_wide * b_wide;
  always @(posedge CLK or posedge async) begin
    if (async || RESET) begin
      a_reg <= 0; b_reg <= 0; asign_reg <= 0; bsign_reg <= 0; out_reg <= 0;
    end else if (CE) begin
      a_reg <= A; b_reg <= B; asign_reg <= ASIGN; bsign_reg <= BSIGN; out_reg <= full[35:0];
    end
  end
  assign DOUT = OUT_REG ? out_reg : full[35:0];
  assign SOA = a;
  assign SOB = b;
endmodule
