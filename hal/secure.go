package hal

// KeySlot names a key held by the secure element.
type KeySlot uint8

// The acquirer keys (acquirer.md §Field 62): the terminal master key from
// provisioning, and the working keys it wraps at every sign-in.
const (
	TMK KeySlot = iota + 1 // terminal master key, double-length 3DES
	PIK                    // PIN key, double-length 3DES
	MAK                    // MAC key, single DES
)

func (s KeySlot) String() string {
	switch s {
	case TMK:
		return "TMK"
	case PIK:
		return "PIK"
	case MAK:
		return "MAK"
	}
	return "KeySlot(?)"
}

// The secure element's roles, like storage.Sealer: a part of the
// daemon takes the narrowest one it needs (the acquirer link MACs and
// installs working keys, the stores seal, the wipe erases).

// KeyInstaller installs and reports the acquirer keys.
type KeyInstaller interface {
	// InstallTMK installs the 16-byte terminal master key after checking
	// kcv, its 6 hex digits (first 3 bytes of 3DES-encrypting 8 zero
	// bytes), compared case-insensitively. On a mismatch nothing changes.
	// The working keys of a previous TMK are dropped: sign in again.
	InstallTMK(tmk []byte, kcv string) error
	// InstallWorkingKeys unwraps PIK and MAK from field 62 of a sign-in
	// response under the TMK (acquirer.md §Field 62) and checks both check
	// values; on any failure nothing is installed.
	InstallWorkingKeys(f62 []byte) error
	// HasKey reports whether the slot holds a key.
	HasKey(KeySlot) bool
}

// MACer computes field 64.
type MACer interface {
	// MAC returns field 64 for a MAC block: the CUP ECB MAC with the MAK,
	// as 8 ASCII characters (acquirer.md §MAC).
	MAC(block []byte) ([8]byte, error)
}

// Sealer encrypts and authenticates merchant store values (AES-256-GCM)
// under a data key the SE creates on first use (storage.Sealer).
type Sealer interface {
	Seal(plaintext, additionalData []byte) ([]byte, error)
	Open(sealed, additionalData []byte) ([]byte, error)
}

// Eraser destroys keys: tamper and unbind.
type Eraser interface {
	// ZeroiseKeys destroys TMK, PIK and MAK.
	ZeroiseKeys() error
	// DestroyDataKey destroys the data key: everything sealed under it is
	// unreadable from then on (crypto-erase on unbind).
	DestroyDataKey() error
}

// SecureElement is the port to the terminal's secure element, all its
// roles together. Keys never leave it in clear: callers install them
// wrapped or checked, and ask for MACs and seals. On a real terminal it
// is tamper-responsive hardware; hal/sesim is the software one of the
// host simulator and the tests.
type SecureElement interface {
	KeyInstaller
	MACer
	Sealer
	Eraser
}
