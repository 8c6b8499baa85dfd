package storage

// beforeCommit runs inside every write transaction of the stores, after
// the transaction's changes and just before bbolt commits them; an error
// rolls the transaction back, exactly as a commit whose page write failed
// does, and is returned by the write. It stays nil in every build but the
// fault-injection test build (tag faultinject, commitfault_inject.go),
// where it makes chosen commits fail with ENOSPC: a full disk cannot be
// made to fail one given commit (README, "Disk full").
var beforeCommit func(path, what string) error
