package main

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"strings"
)

// loadDeviceKeys reads the terminals' public keys: either one JSON object
// {"<serial>":"<ed25519_pub base64>",…} or the JSON lines that
// posagentd factory-init prints ({"serial":…,"ed25519_pub":…,…} per line).
func loadDeviceKeys(path string) (map[string]ed25519.PublicKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read device keys: %w", err)
	}
	pubs := map[string]string{}
	// A file of factory-init lines with a single terminal is also a valid
	// JSON object, one with a "serial" key: read it as lines too.
	if err := json.Unmarshal(data, &pubs); err != nil || pubs["serial"] != "" {
		pubs = map[string]string{}
		sc := bufio.NewScanner(bytes.NewReader(data))
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for n := 1; sc.Scan(); n++ {
			line := strings.TrimSpace(sc.Text())
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			var rec struct {
				Serial     string `json:"serial"`
				Ed25519Pub string `json:"ed25519_pub"`
			}
			if err := json.Unmarshal([]byte(line), &rec); err != nil || rec.Serial == "" {
				return nil, fmt.Errorf("device keys %s line %d: want a JSON object of serial -> key, or factory-init JSON lines", path, n)
			}
			pubs[rec.Serial] = rec.Ed25519Pub
		}
		if err := sc.Err(); err != nil {
			return nil, fmt.Errorf("device keys %s: %w", path, err)
		}
	}
	keys := make(map[string]ed25519.PublicKey, len(pubs))
	for serial, b64 := range pubs {
		raw, err := base64.StdEncoding.DecodeString(b64)
		if err != nil || len(raw) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("device keys %s: %s: want a base64 32-byte Ed25519 public key", path, serial)
		}
		keys[serial] = ed25519.PublicKey(raw)
	}
	return keys, nil
}

// readSerials reads one serial per line; blank lines and # comments are skipped.
func readSerials(path string) ([]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read serials: %w", err)
	}
	var out []string
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		out = append(out, line)
	}
	return out, nil
}
