// Simulation model of the ECP5's MULT18X18D, as lela instantiates it (hw/registered_multiplier.py):
// an 18 x 18 multiplier whose A and B inputs are registered on CLK0's rising edge while CE0 is
// high (REG_INPUTA_CLK / REG_INPUTB_CLK "CLK0", their CE "CE0" and RST "RST0"), or not registered
// ("NONE"); SIGNEDA and SIGNEDB say whether A and B are two's complement; P is the 36-bit product.
// Written from Lattice's description of the primitive (its ECP5 sysDSP usage guide,
// TN1267), for simulation only: synthesis must see Yosys's black box (techlibs/ecp5/cells_bb.v),
// so gen/ never emits this file. Every other register, the C input, the shift chains and
// the cascade are outside the model: a parameter that asks for them, or RST0 high at an edge
// (whose priority over CE0 the model does not claim to know), stops the simulation.
// Only the ports lela connects are declared. The registers start at 0, as the device's do after
// configuration with GSR disabled.
module MULT18X18D(
    A17, A16, A15, A14, A13, A12, A11, A10, A9, A8, A7, A6, A5, A4, A3, A2, A1, A0, B17, B16,
    B15, B14, B13, B12, B11, B10, B9, B8, B7, B6, B5, B4, B3, B2, B1, B0, SIGNEDA, SIGNEDB,
    SOURCEA, SOURCEB, CLK0, CE0, RST0, P35, P34, P33, P32, P31, P30, P29, P28, P27, P26, P25,
    P24, P23, P22, P21, P20, P19, P18, P17, P16, P15, P14, P13, P12, P11, P10, P9, P8, P7, P6,
    P5, P4, P3, P2, P1, P0
);
    input A17, A16, A15, A14, A13, A12, A11, A10, A9, A8, A7, A6, A5, A4, A3, A2, A1, A0;
    input B17, B16, B15, B14, B13, B12, B11, B10, B9, B8, B7, B6, B5, B4, B3, B2, B1, B0;
    input SIGNEDA, SIGNEDB, SOURCEA, SOURCEB;
    input CLK0, CE0, RST0;
    output P35, P34, P33, P32, P31, P30, P29, P28, P27, P26, P25, P24, P23, P22, P21, P20, P19, P18,
           P17, P16, P15, P14, P13, P12, P11, P10, P9, P8, P7, P6, P5, P4, P3, P2, P1, P0;

    parameter REG_INPUTA_CLK = "NONE";
    parameter REG_INPUTA_CE = "CE0";
    parameter REG_INPUTA_RST = "RST0";
    parameter REG_INPUTB_CLK = "NONE";
    parameter REG_INPUTB_CE = "CE0";
    parameter REG_INPUTB_RST = "RST0";
    parameter REG_INPUTC_CLK = "NONE";
    parameter REG_PIPELINE_CLK = "NONE";
    parameter REG_PIPELINE_CE = "CE0";
    parameter REG_PIPELINE_RST = "RST0";
    parameter REG_OUTPUT_CLK = "NONE";
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

    wire [17:0] a_in = {A17, A16, A15, A14, A13, A12, A11, A10, A9, A8, A7, A6, A5, A4, A3, A2, A1, A0};
    wire [17:0] b_in = {B17, B16, B15, B14, B13, B12, B11, B10, B9, B8, B7, B6, B5, B4, B3, B2, B1, B0};
    localparam A_REGISTERED = REG_INPUTA_CLK == "CLK0";
    localparam B_REGISTERED = REG_INPUTB_CLK == "CLK0";

    initial begin
        if (REG_INPUTA_CLK != "NONE" && !(A_REGISTERED && REG_INPUTA_CE == "CE0"
                                          && REG_INPUTA_RST == "RST0"))
            $fatal(1, "MULT18X18D model: REG_INPUTA_* other than NONE or CLK0/CE0/RST0");
        if (REG_INPUTB_CLK != "NONE" && !(B_REGISTERED && REG_INPUTB_CE == "CE0"
                                          && REG_INPUTB_RST == "RST0"))
            $fatal(1, "MULT18X18D model: REG_INPUTB_* other than NONE or CLK0/CE0/RST0");
        if (REG_INPUTC_CLK != "NONE" || REG_PIPELINE_CLK != "NONE" || REG_OUTPUT_CLK != "NONE")
            $fatal(1, "MULT18X18D model: only the A and B input registers are modelled");
        if (SOURCEB_MODE != "B_SHIFT" || MULT_BYPASS != "DISABLED" || RESETMODE != "SYNC"
            || CLK0_DIV != "ENABLED")
            $fatal(1, "MULT18X18D model: SOURCEB_MODE, MULT_BYPASS, RESETMODE or CLK0_DIV unmodelled");
    end

    reg [17:0] a_reg = 18'd0;
    reg [17:0] b_reg = 18'd0;
    always @(posedge CLK0) begin
        if (RST0 === 1'b1 && (A_REGISTERED || B_REGISTERED))
            $fatal(1, "MULT18X18D model: RST0 high at an edge is outside the modelled subset");
        if (CE0) begin
            a_reg <= a_in;
            b_reg <= b_in;
        end
    end

    wire [17:0] a_used = A_REGISTERED ? a_reg : a_in;
    wire [17:0] b_used = B_REGISTERED ? b_reg : b_in;
    // Each operand extended by its sign bit when signed, by a zero when not: the product of
    // two 19-bit two's complement numbers, of which the low 36 bits are the block's.
    wire signed [18:0] a_ext = {SIGNEDA & a_used[17], a_used};
    wire signed [18:0] b_ext = {SIGNEDB & b_used[17], b_used};
    wire signed [37:0] product = a_ext * b_ext;
    assign {P35, P34, P33, P32, P31, P30, P29, P28, P27, P26, P25, P24, P23, P22, P21, P20, P19, P18, P17, P16, P15, P14, P13, P12, P11, P10, P9, P8, P7, P6, P5, P4, P3, P2, P1, P0} = product[35:0];
endmodule
