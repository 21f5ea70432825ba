// Behavioural models of the two ECP5 cells that Yosys's share/ecp5 has only as black boxes,
// for gate-level simulation with Verilator (nfloop.boards.netlist). Each keeps the cell's function
// in the modes that Yosys's mappings and nfloop's gateware use, and stops the simulation at its
// start when a netlist sets any other mode, rather than simulate it wrongly.

// DP16KD: 18 Kbit true dual-port block RAM, 2048 9-bit bytes, as Yosys's memory mapping
// (share/lattice/brams_16kd.txt, brams_map_16kd.v) describes it:
// - a port of width 1, 2, 4 or 9 addresses byte AD[13:3]; widths below 9 use its 8 data bits,
//   the bit, pair or nibble chosen by AD[2:0], AD[2:1] or AD[2];
// - width 18 is the byte pair AD[13:4] (low byte on D[8:0]), with byte enables AD[1:0] on writes;
// - width 36 on port A is the pseudo dual-port mode (Yosys's $__PDPW16KD_): port A writes the four
//   bytes AD[13:5] from {DIB, DIA} with byte enables ADA[3:0], port B reads them on {DOB, DOA},
//   or reads a narrower word on DOB;
// - WRITEMODE on the port that writes: NORMAL keeps its output, WRITETHROUGH shows the new word,
//   READBEFOREWRITE the old one; a port reading the word the other port writes in the same cycle
//   gets the old word;
// - REGMODE NOREG (the output is the read register), RSTx clears it, synchronously or (RESETMODE
//   ASYNC) at once; CEx holds the port; chip selects decode "0b000";
// - REGMODE_A OUTREG (nfloop.boards.families.ecp5.dp16kd, port A not in the wide mode): the read
//   register is followed by an output register, which OCEA enables and RSTA clears;
// - in the wide mode, REGMODE OUTREG on both ports (nfloop.boards.families.ecp5.WideBank): the word
//   port B reads passes an output register on its way to DOA and DOB, which OCEB enables and RSTB
//   clears (WideBank clocks and enables both ports alike, so which port's register is which does
//   not matter to it);
// - INITVAL_xx holds sixteen 18-bit words in 20-bit fields, word 0 lowest.
module DP16KD(
  input DIA17, DIA16, DIA15, DIA14, DIA13, DIA12, DIA11, DIA10, DIA9, DIA8, DIA7, DIA6, DIA5, DIA4, DIA3, DIA2, DIA1, DIA0,
  input ADA13, ADA12, ADA11, ADA10, ADA9, ADA8, ADA7, ADA6, ADA5, ADA4, ADA3, ADA2, ADA1, ADA0,
  input CEA, OCEA, CLKA, WEA, RSTA,
  input CSA2, CSA1, CSA0,
  output DOA17, DOA16, DOA15, DOA14, DOA13, DOA12, DOA11, DOA10, DOA9, DOA8, DOA7, DOA6, DOA5, DOA4, DOA3, DOA2, DOA1, DOA0,
  input DIB17, DIB16, DIB15, DIB14, DIB13, DIB12, DIB11, DIB10, DIB9, DIB8, DIB7, DIB6, DIB5, DIB4, DIB3, DIB2, DIB1, DIB0,
  input ADB13, ADB12, ADB11, ADB10, ADB9, ADB8, ADB7, ADB6, ADB5, ADB4, ADB3, ADB2, ADB1, ADB0,
  input CEB, OCEB, CLKB, WEB, RSTB,
  input CSB2, CSB1, CSB0,
  output DOB17, DOB16, DOB15, DOB14, DOB13, DOB12, DOB11, DOB10, DOB9, DOB8, DOB7, DOB6, DOB5, DOB4, DOB3, DOB2, DOB1, DOB0
);
  parameter DATA_WIDTH_A = 18;
  parameter DATA_WIDTH_B = 18;
  parameter REGMODE_A = "NOREG";
  parameter REGMODE_B = "NOREG";
  parameter RESETMODE = "SYNC";
  parameter ASYNC_RESET_RELEASE = "SYNC";
  parameter CSDECODE_A = "0b000";
  parameter CSDECODE_B = "0b000";
  parameter WRITEMODE_A = "NORMAL";
  parameter WRITEMODE_B = "NORMAL";
  parameter CLKAMUX = "CLKA";
  parameter CLKBMUX = "CLKB";
  parameter GSR = "ENABLED";
  parameter INIT_DATA = "STATIC";
  parameter INITVAL_00 = 320'h0; parameter INITVAL_01 = 320'h0; parameter INITVAL_02 = 320'h0; parameter INITVAL_03 = 320'h0;
  parameter INITVAL_04 = 320'h0; parameter INITVAL_05 = 320'h0; parameter INITVAL_06 = 320'h0; parameter INITVAL_07 = 320'h0;
  parameter INITVAL_08 = 320'h0; parameter INITVAL_09 = 320'h0; parameter INITVAL_0A = 320'h0; parameter INITVAL_0B = 320'h0;
  parameter INITVAL_0C = 320'h0; parameter INITVAL_0D = 320'h0; parameter INITVAL_0E = 320'h0; parameter INITVAL_0F = 320'h0;
  parameter INITVAL_10 = 320'h0; parameter INITVAL_11 = 320'h0; parameter INITVAL_12 = 320'h0; parameter INITVAL_13 = 320'h0;
  parameter INITVAL_14 = 320'h0; parameter INITVAL_15 = 320'h0; parameter INITVAL_16 = 320'h0; parameter INITVAL_17 = 320'h0;
  parameter INITVAL_18 = 320'h0; parameter INITVAL_19 = 320'h0; parameter INITVAL_1A = 320'h0; parameter INITVAL_1B = 320'h0;
  parameter INITVAL_1C = 320'h0; parameter INITVAL_1D = 320'h0; parameter INITVAL_1E = 320'h0; parameter INITVAL_1F = 320'h0;
  parameter INITVAL_20 = 320'h0; parameter INITVAL_21 = 320'h0; parameter INITVAL_22 = 320'h0; parameter INITVAL_23 = 320'h0;
  parameter INITVAL_24 = 320'h0; parameter INITVAL_25 = 320'h0; parameter INITVAL_26 = 320'h0; parameter INITVAL_27 = 320'h0;
  parameter INITVAL_28 = 320'h0; parameter INITVAL_29 = 320'h0; parameter INITVAL_2A = 320'h0; parameter INITVAL_2B = 320'h0;
  parameter INITVAL_2C = 320'h0; parameter INITVAL_2D = 320'h0; parameter INITVAL_2E = 320'h0; parameter INITVAL_2F = 320'h0;
  parameter INITVAL_30 = 320'h0; parameter INITVAL_31 = 320'h0; parameter INITVAL_32 = 320'h0; parameter INITVAL_33 = 320'h0;
  parameter INITVAL_34 = 320'h0; parameter INITVAL_35 = 320'h0; parameter INITVAL_36 = 320'h0; parameter INITVAL_37 = 320'h0;
  parameter INITVAL_38 = 320'h0; parameter INITVAL_39 = 320'h0; parameter INITVAL_3A = 320'h0; parameter INITVAL_3B = 320'h0;
  parameter INITVAL_3C = 320'h0; parameter INITVAL_3D = 320'h0; parameter INITVAL_3E = 320'h0; parameter INITVAL_3F = 320'h0;

  localparam [20479:0] INIT = {
    INITVAL_3F, INITVAL_3E, INITVAL_3D, INITVAL_3C, INITVAL_3B, INITVAL_3A, INITVAL_39, INITVAL_38,
    INITVAL_37, INITVAL_36, INITVAL_35, INITVAL_34, INITVAL_33, INITVAL_32, INITVAL_31, INITVAL_30,
    INITVAL_2F, INITVAL_2E, INITVAL_2D, INITVAL_2C, INITVAL_2B, INITVAL_2A, INITVAL_29, INITVAL_28,
    INITVAL_27, INITVAL_26, INITVAL_25, INITVAL_24, INITVAL_23, INITVAL_22, INITVAL_21, INITVAL_20,
    INITVAL_1F, INITVAL_1E, INITVAL_1D, INITVAL_1C, INITVAL_1B, INITVAL_1A, INITVAL_19, INITVAL_18,
    INITVAL_17, INITVAL_16, INITVAL_15, INITVAL_14, INITVAL_13, INITVAL_12, INITVAL_11, INITVAL_10,
    INITVAL_0F, INITVAL_0E, INITVAL_0D, INITVAL_0C, INITVAL_0B, INITVAL_0A, INITVAL_09, INITVAL_08,
    INITVAL_07, INITVAL_06, INITVAL_05, INITVAL_04, INITVAL_03, INITVAL_02, INITVAL_01, INITVAL_00};
  localparam WIDE = DATA_WIDTH_A == 36;

  wire [17:0] dia = {DIA17, DIA16, DIA15, DIA14, DIA13, DIA12, DIA11, DIA10, DIA9, DIA8, DIA7, DIA6, DIA5, DIA4, DIA3, DIA2, DIA1, DIA0};
  wire [17:0] dib = {DIB17, DIB16, DIB15, DIB14, DIB13, DIB12, DIB11, DIB10, DIB9, DIB8, DIB7, DIB6, DIB5, DIB4, DIB3, DIB2, DIB1, DIB0};
  wire [13:0] ada = {ADA13, ADA12, ADA11, ADA10, ADA9, ADA8, ADA7, ADA6, ADA5, ADA4, ADA3, ADA2, ADA1, ADA0};
  wire [13:0] adb = {ADB13, ADB12, ADB11, ADB10, ADB9, ADB8, ADB7, ADB6, ADB5, ADB4, ADB3, ADB2, ADB1, ADB0};
  wire sela = {CSA2, CSA1, CSA0} == 3'b000;
  wire selb = {CSB2, CSB1, CSB0} == 3'b000;
  reg [17:0] doa, dob, doa_port, doa_wide, doa_out, dob_port, wide_out_a, wide_out_b;
  assign {DOA17, DOA16, DOA15, DOA14, DOA13, DOA12, DOA11, DOA10, DOA9, DOA8, DOA7, DOA6, DOA5, DOA4, DOA3, DOA2, DOA1, DOA0} = doa;
  assign {DOB17, DOB16, DOB15, DOB14, DOB13, DOB12, DOB11, DOB10, DOB9, DOB8, DOB7, DOB6, DOB5, DOB4, DOB3, DOB2, DOB1, DOB0} = dob;

  reg [8:0] bytes [0:2047];
  integer i;
  initial begin
    if (!(DATA_WIDTH_A == 1 || DATA_WIDTH_A == 2 || DATA_WIDTH_A == 4 || DATA_WIDTH_A == 9 || DATA_WIDTH_A == 18
          || DATA_WIDTH_A == 36) || !(DATA_WIDTH_B == 1 || DATA_WIDTH_B == 2 || DATA_WIDTH_B == 4
          || DATA_WIDTH_B == 9 || DATA_WIDTH_B == 18 || DATA_WIDTH_B == 36) || (DATA_WIDTH_B == 36 && !WIDE)
        || !(WIDE ? REGMODE_A == REGMODE_B && (REGMODE_A == "NOREG" || REGMODE_A == "OUTREG")
                  : (REGMODE_A == "NOREG" || REGMODE_A == "OUTREG") && REGMODE_B == "NOREG")
        || CSDECODE_A != "0b000" || CSDECODE_B != "0b000"
        || CLKAMUX != "CLKA" || CLKBMUX != "CLKB" || (RESETMODE != "SYNC" && RESETMODE != "ASYNC")) begin
      $display("DP16KD %m: a mode this model does not have (nfloop.boards.netlist models Yosys's mappings only)");
      $finish;
    end
    for (i = 0; i < 1024; i = i + 1) begin
      bytes[2 * i] = INIT[20 * i +: 9];
      bytes[2 * i + 1] = INIT[20 * i + 9 +: 9];
    end
    doa_port = 18'd0;
    doa_wide = 18'd0;
    doa_out = 18'd0;
    dob_port = 18'd0;
    wide_out_a = 18'd0;
    wide_out_b = 18'd0;
  end

  // the word at `address` for a port of `width`, from the bytes as they are before this clock edge
  function [35:0] read_word(input integer width, input [13:0] address);
    reg [8:0] b;
    begin
      b = bytes[address[13:3]];
      case (width)
        1: read_word = {35'd0, b[address[2:0]]};
        2: read_word = {34'd0, b[{address[2:1], 1'b0} +: 2]};
        4: read_word = {32'd0, b[{address[2], 2'b0} +: 4]};
        9: read_word = {27'd0, b};
        18: read_word = {18'd0, bytes[{address[13:4], 1'b1}], bytes[{address[13:4], 1'b0}]};
        default: read_word = {bytes[{address[13:5], 2'd3}], bytes[{address[13:5], 2'd2}],
                              bytes[{address[13:5], 2'd1}], bytes[{address[13:5], 2'd0}]};
      endcase
    end
  endfunction

  // `word` merged into the bytes at `address`, byte lanes enabled by `enables` (widths 18 and 36)
  task write_word(input integer width, input [13:0] address, input [35:0] word, input [3:0] enables);
    reg [8:0] b;
    begin
      b = bytes[address[13:3]];
      case (width)
        1: begin b[address[2:0]] = word[0]; bytes[address[13:3]] <= b; end
        2: begin b[{address[2:1], 1'b0} +: 2] = word[1:0]; bytes[address[13:3]] <= b; end
        4: begin b[{address[2], 2'b0} +: 4] = word[3:0]; bytes[address[13:3]] <= b; end
        9: bytes[address[13:3]] <= word[8:0];
        18: begin
          if (enables[0]) bytes[{address[13:4], 1'b0}] <= word[8:0];
          if (enables[1]) bytes[{address[13:4], 1'b1}] <= word[17:9];
        end
        default: begin
          if (enables[0]) bytes[{address[13:5], 2'd0}] <= word[8:0];
          if (enables[1]) bytes[{address[13:5], 2'd1}] <= word[17:9];
          if (enables[2]) bytes[{address[13:5], 2'd2}] <= word[26:18];
          if (enables[3]) bytes[{address[13:5], 2'd3}] <= word[35:27];
        end
      endcase
    end
  endtask

  // the word a port shows after writing `word` over `old` (WRITETHROUGH with byte enables)
  function [35:0] merged(input [35:0] old, input [35:0] word, input [3:0] enables, input integer width);
    begin
      merged = word;
      if (width >= 18) begin
        if (!enables[0]) merged[8:0] = old[8:0];
        if (!enables[1]) merged[17:9] = old[17:9];
        if (!enables[2]) merged[26:18] = old[26:18];
        if (!enables[3]) merged[35:27] = old[35:27];
      end
    end
  endfunction

  wire [35:0] wide_word = {dib, dia};
  wire [3:0] enables_a = DATA_WIDTH_A == 18 ? {2'b11, ada[1:0]} : 4'b1111;
  wire [3:0] enables_b = DATA_WIDTH_B == 18 ? {2'b11, adb[1:0]} : 4'b1111;
  wire reset_a = RESETMODE == "ASYNC" && RSTA;
  wire reset_b = RESETMODE == "ASYNC" && RSTB;
  reg [35:0] old_a, old_b, read_b;
  always @(*) doa = REGMODE_A == "OUTREG" ? (WIDE ? wide_out_a : doa_out) : WIDE ? doa_wide : doa_port;
  always @(*) dob = REGMODE_B == "OUTREG" ? wide_out_b : dob_port;

  always @(posedge CLKB or posedge reset_b) begin
    if (reset_b || (RESETMODE == "SYNC" && RSTB)) begin
      wide_out_a <= 18'd0;
      wide_out_b <= 18'd0;
    end else if (OCEB) begin
      wide_out_a <= doa_wide;
      wide_out_b <= dob_port;
    end
  end

  always @(posedge CLKA or posedge reset_a) begin
    if (reset_a || (RESETMODE == "SYNC" && RSTA))
      doa_out <= 18'd0;
    else if (OCEA)
      doa_out <= doa_port;
  end

  always @(posedge CLKA or posedge reset_a) begin
    if (reset_a || (RESETMODE == "SYNC" && RSTA))
      doa_port <= 18'd0;
    else if (CEA && sela) begin
      if (WIDE) begin
        if (WEA) write_word(36, ada, wide_word, ada[3:0]);
      end else if (WEA) begin
        old_a = read_word(DATA_WIDTH_A, ada);
        write_word(DATA_WIDTH_A, ada, {18'd0, dia}, enables_a);
        if (WRITEMODE_A == "WRITETHROUGH")
          doa_port <= merged(old_a, {18'd0, dia}, enables_a, DATA_WIDTH_A);
        else if (WRITEMODE_A == "READBEFOREWRITE")
          doa_port <= old_a[17:0];
      end else begin
        old_a = read_word(DATA_WIDTH_A, ada);
        doa_port <= old_a[17:0];
      end
    end
  end

  always @(posedge CLKB or posedge reset_b) begin
    if (reset_b || (RESETMODE == "SYNC" && RSTB)) begin
      dob_port <= 18'd0;
      doa_wide <= 18'd0;
    end else if (CEB && selb) begin
      if (WEB && !WIDE) begin
        old_b = read_word(DATA_WIDTH_B, adb);
        write_word(DATA_WIDTH_B, adb, {18'd0, dib}, enables_b);
        if (WRITEMODE_B == "WRITETHROUGH")
          dob_port <= merged(old_b, {18'd0, dib}, enables_b, DATA_WIDTH_B);
        else if (WRITEMODE_B == "READBEFOREWRITE")
          dob_port <= old_b[17:0];
      end else begin
        read_b = read_word(DATA_WIDTH_B, adb);
        dob_port <= read_b[17:0];
        if (DATA_WIDTH_B == 36) begin
          doa_wide <= read_b[17:0];
          dob_port <= read_b[35:18];
        end
      end
    end
  end
endmodule


// MULT18X18D: 18x18 multiplier with optional input and output registers, in the modes nfloop's
// ECP5 DSP block (nfloop.boards.families.ecp5.mult18x18d) and Yosys's own mapping set: registers
// on CLK0 with CE0 and RST0, or none; no pipeline register, no C input, no cascade, no bypass.
// The signedness inputs travel with the operands through the input registers.
module MULT18X18D(
  input A17, A16, A15, A14, A13, A12, A11, A10, A9, A8, A7, A6, A5, A4, A3, A2, A1, A0,
  input B17, B16, B15, B14, B13, B12, B11, B10, B9, B8, B7, B6, B5, B4, B3, B2, B1, B0,
  input C17, C16, C15, C14, C13, C12, C11, C10, C9, C8, C7, C6, C5, C4, C3, C2, C1, C0,
  input SIGNEDA, SIGNEDB, SOURCEA, SOURCEB,
  input CLK3, CLK2, CLK1, CLK0, CE3, CE2, CE1, CE0, RST3, RST2, RST1, RST0,
  input SRIA17, SRIA16, SRIA15, SRIA14, SRIA13, SRIA12, SRIA11, SRIA10, SRIA9, SRIA8, SRIA7, SRIA6, SRIA5, SRIA4, SRIA3, SRIA2, SRIA1, SRIA0,
  input SRIB17, SRIB16, SRIB15, SRIB14, SRIB13, SRIB12, SRIB11, SRIB10, SRIB9, SRIB8, SRIB7, SRIB6, SRIB5, SRIB4, SRIB3, SRIB2, SRIB1, SRIB0,
  output SROA17, SROA16, SROA15, SROA14, SROA13, SROA12, SROA11, SROA10, SROA9, SROA8, SROA7, SROA6, SROA5, SROA4, SROA3, SROA2, SROA1, SROA0,
  output SROB17, SROB16, SROB15, SROB14, SROB13, SROB12, SROB11, SROB10, SROB9, SROB8, SROB7, SROB6, SROB5, SROB4, SROB3, SROB2, SROB1, SROB0,
  output ROA17, ROA16, ROA15, ROA14, ROA13, ROA12, ROA11, ROA10, ROA9, ROA8, ROA7, ROA6, ROA5, ROA4, ROA3, ROA2, ROA1, ROA0,
  output ROB17, ROB16, ROB15, ROB14, ROB13, ROB12, ROB11, ROB10, ROB9, ROB8, ROB7, ROB6, ROB5, ROB4, ROB3, ROB2, ROB1, ROB0,
  output ROC17, ROC16, ROC15, ROC14, ROC13, ROC12, ROC11, ROC10, ROC9, ROC8, ROC7, ROC6, ROC5, ROC4, ROC3, ROC2, ROC1, ROC0,
  output P35, P34, P33, P32, P31, P30, P29, P28, P27, P26, P25, P24, P23, P22, P21, P20, P19, P18,
  output P17, P16, P15, P14, P13, P12, P11, P10, P9, P8, P7, P6, P5, P4, P3, P2, P1, P0,
  output SIGNEDP
);
  parameter REG_INPUTA_CLK = "NONE";
  parameter REG_INPUTA_CE = "CE0";
  parameter REG_INPUTA_RST = "RST0";
  parameter REG_INPUTB_CLK = "NONE";
  parameter REG_INPUTB_CE = "CE0";
  parameter REG_INPUTB_RST = "RST0";
  parameter REG_INPUTC_CLK = "NONE";
  parameter REG_INPUTC_CE = "CE0";
  parameter REG_INPUTC_RST = "RST0";
  parameter REG_PIPELINE_CLK = "NONE";
  parameter REG_PIPELINE_CE = "CE0";
  parameter REG_PIPELINE_RST = "RST0";
  parameter REG_OUTPUT_CLK = "NONE";
  parameter REG_OUTPUT_CE = "CE0";
  parameter REG_OUTPUT_RST = "RST0";
  parameter CLK0_DIV = "ENABLED";
  parameter CLK1_DIV = "ENABLED";
  parameter CLK2_DIV = "ENABLED";
  parameter CLK3_DIV = "ENABLED";
  parameter HIGHSPEED_CLK = "NONE";
  parameter GSR = "ENABLED";
  parameter CAS_MATCH_REG = "FALSE";
  parameter SOURCEB_MODE = "B_SHIFT";
  parameter MULT_BYPASS = "DISABLED";
  parameter RESETMODE = "SYNC";

  localparam REG_A = REG_INPUTA_CLK == "CLK0";
  localparam REG_B = REG_INPUTB_CLK == "CLK0";
  localparam REG_P = REG_OUTPUT_CLK == "CLK0";

  initial begin
    if ((REG_INPUTA_CLK != "NONE" && !REG_A) || (REG_INPUTB_CLK != "NONE" && !REG_B)
        || (REG_OUTPUT_CLK != "NONE" && !REG_P) || REG_PIPELINE_CLK != "NONE"
        || (REG_A && (REG_INPUTA_CE != "CE0" || REG_INPUTA_RST != "RST0"))
        || (REG_B && (REG_INPUTB_CE != "CE0" || REG_INPUTB_RST != "RST0"))
        || (REG_P && (REG_OUTPUT_CE != "CE0" || REG_OUTPUT_RST != "RST0"))
        || MULT_BYPASS != "DISABLED" || RESETMODE != "SYNC") begin
      $display("MULT18X18D %m: a mode this model does not have (nfloop.boards.netlist models Yosys's mappings only)");
      $finish;
    end
  end

  wire [17:0] a = {A17, A16, A15, A14, A13, A12, A11, A10, A9, A8, A7, A6, A5, A4, A3, A2, A1, A0};
  wire [17:0] b = {B17, B16, B15, B14, B13, B12, B11, B10, B9, B8, B7, B6, B5, B4, B3, B2, B1, B0};
  reg [18:0] a_reg = 19'd0, b_reg = 19'd0;
  reg [35:0] p_reg = 36'd0;
  always @(posedge CLK0) begin
    if (RST0) begin
      a_reg <= 19'd0;
      b_reg <= 19'd0;
      p_reg <= 36'd0;
    end else if (CE0) begin
      a_reg <= {SIGNEDA, a};
      b_reg <= {SIGNEDB, b};
      p_reg <= product;
    end
  end
  wire [18:0] a_in = REG_A ? a_reg : {SIGNEDA, a};
  wire [18:0] b_in = REG_B ? b_reg : {SIGNEDB, b};
  wire signed [36:0] a_wide = {{19{a_in[18] & a_in[17]}}, a_in[17:0]};
  wire signed [36:0] b_wide = {{19{b_in[18] & b_in[17]}}, b_in[17:0]};
  wire signed [36:0] full = a_wide * b_wide;
  wire [35:0] product = full[35:0];
  wire [35:0] p = REG_P ? p_reg : product;
  assign {P35, P34, P33, P32, P31, P30, P29, P28, P27, P26, P25, P24, P23, P22, P21, P20, P19, P18,
          P17, P16, P15, P14, P13, P12, P11, P10, P9, P8, P7, P6, P5, P4, P3, P2, P1, P0} = p;
  assign SIGNEDP = a_in[18] | b_in[18];
  assign {SROA17, SROA16, SROA15, SROA14, SROA13, SROA12, SROA11, SROA10, SROA9, SROA8, SROA7, SROA6, SROA5, SROA4, SROA3, SROA2, SROA1, SROA0} = a_in[17:0];
  assign {SROB17, SROB16, SROB15, SROB14, SROB13, SROB12, SROB11, SROB10, SROB9, SROB8, SROB7, SROB6, SROB5, SROB4, SROB3, SROB2, SROB1, SROB0} = b_in[17:0];
  assign {ROA17, ROA16, ROA15, ROA14, ROA13, ROA12, ROA11, ROA10, ROA9, ROA8, ROA7, ROA6, ROA5, ROA4, ROA3, ROA2, ROA1, ROA0} = a_in[17:0];
  assign {ROB17, ROB16, ROB15, ROB14, ROB13, ROB12, ROB11, ROB10, ROB9, ROB8, ROB7, ROB6, ROB5, ROB4, ROB3, ROB2, ROB1, ROB0} = b_in[17:0];
  assign {ROC17, ROC16, ROC15, ROC14, ROC13, ROC12, ROC11, ROC10, ROC9, ROC8, ROC7, ROC6, ROC5, ROC4, ROC3, ROC2, ROC1, ROC0} = 18'd0;
endmodule
