// Package iso8583 is the acquirer profile of posagent (spec/acquirer.md): the
// China UnionPay-style binary ISO 8583 messages the terminal exchanges with
// the acquirer host, in two codecs that must agree byte for byte.
//
//   - The fast path (Message): a table-driven codec over fixed storage that
//     packs into a caller's buffer and decodes into a caller's Message
//     without allocating. The terminal uses it on the wire.
//     Pack and Unpack run one loop over the bitmap, switching on a
//     per-field op code from the profile table (profile.go); they and Set
//     check and move values eight bytes at a time (SWAR, validate.go,
//     words.go). Unpack's loop
//     only knows whether a frame is good; a bad one goes through the
//     field-by-field decoder (slowpath.go) for the field and offset of the
//     error, and the tests hold the two to the same verdicts.
//   - The reference (package iso8583/reference: Spec, Pack, Unpack): the
//     same profile as a github.com/moov-io/iso8583 spec, used by the
//     acquirer simulator and as the oracle of the differential and fuzz
//     tests. It is a package of its own so the terminal's binary does not
//     carry moov-io, which also does not compile for 32-bit ARM
//     (v0.26.1 prefix/binary.go compares an int with math.MaxUint32).
//
// Frame: | length 2B big-endian | TPDU 5B | header 6B | MTI 2B BCD | bitmap 8B | fields |.
// Offsets in errors count from the first byte of the length.
//
// Choices where acquirer.md is silent, following CUP practice and the golden
// testdata (shared/testdata/README.md):
//   - Field 60 is sent as 13 digits: 60.1 60.2 60.3 then 60.4 = 0, 60.5 = 0.
//   - Decoding is strict: a non-zero pad nibble (odd n/z fields, the first
//     nibble of an LLL prefix) is refused, as are bytes after the last field
//     and a bitmap naming a field outside the profile or bit 1.
//   - an allows letters, digits and space (spaces pad an fields); ans allows
//     printable ASCII 0x20..0x7E; z allows digits and '=' (nibble D).
//   - Set does not pad: a fixed an/ans field must be given at its exact
//     length, padding spaces included. Variable fields may be empty.
//   - Any 4-digit MTI and any profile field may be combined; which fields a
//     message must carry is the caller's business (terminal, simulator).
//   - The MAC covers frame[13:len-8] (MTI to the last field before 64, bit 64
//     set); see MACBlock and PutMAC. Computing it is iso8583/mac's job.
package iso8583
