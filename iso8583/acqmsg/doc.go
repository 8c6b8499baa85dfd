// Package acqmsg is spec/acquirer.md §Messages as pure code: it builds
// every request the terminal sends from the core's terminal.Request (which
// fields a 0800, 0200, 0400, 0500 or 0320 carries, the layouts of fields
// 48, 60 and 61) and reads every answer into the core's
// terminal.AcquirerReply (the response checks: MTI, F11 and F41 echoed,
// 39, the MAC, the header's processing requirement, 60.2, the settlement
// flag of 48, the sign-in's key block in 62).
//
// It does no IO. The MAC is asked of a MACer, the secure element's MAC role,
// so the functions are deterministic for a given MAK and testable with the
// known test keys. Installing the working keys is not part of reading an
// answer: Answer hands the sign-in's key block to the caller, which installs
// it in the secure element and reports a failure to the core in
// Response.KeysErr.
//
// The shell (cmd/posagentd) only frames, sends and receives: it calls
// Build, exchanges the bytes with iso8583/link, and calls Answer with what
// came back (or the link's error).
package acqmsg
