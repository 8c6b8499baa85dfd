package storage

import "path/filepath"

// File names under data_dir, fixed so the daemon, factory-init and the
// tests agree.
const (
	IdentityFile = "identity.db"
	MerchantFile = "merchant.db"
	SEDir        = "se"
)

// Paths names the identity store, the merchant store and the software
// secure element's directory under dataDir.
func Paths(dataDir string) (identity, merchant, se string) {
	return filepath.Join(dataDir, IdentityFile),
		filepath.Join(dataDir, MerchantFile),
		filepath.Join(dataDir, SEDir)
}
