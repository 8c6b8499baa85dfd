// Package storage is posagent's persistence layer: two bbolt files under
// data_dir, both mode 0600 in a 0700 directory.
//
//   - The IDENTITY store (identity.db) holds the factory identity, the seen
//     command ids, the unbind intent, the durable MQTT outbox and a small
//     key/value area. It is never wiped.
//   - The MERCHANT store (merchant.db) holds merchant parameters, the
//     settlement-card binding, the STAN/batch counters, the journal and the
//     reversal slot. Every value is sealed (AES-256-GCM) by the secure
//     element; it is wiped on unbind (crypto-erase: the SE destroys the data
//     key, then Wipe zeroes and removes the file).
//
// Storage is byte-oriented: domain records are serialised by the caller.
// Every write is one bbolt read-write transaction, whose commit fsyncs
// (fdatasync) the data pages and then the meta page before returning, so a
// write that returned survives a power cut; a write interrupted by one is
// either wholly there or wholly absent (bbolt's two alternating meta pages).
//
// A truncated or corrupted file is reported as an error naming the path,
// never a panic: bbolt trusts its page pointers, so every call into it runs
// under recover with debug.SetPanicOnFault (a page pointer past the end of
// a truncated, mmapped file faults with SIGBUS/SIGSEGV).
package storage
