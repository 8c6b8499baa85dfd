package remote

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

func testKey(t testing.TB, seed byte) (ed25519.PublicKey, ed25519.PrivateKey) {
	t.Helper()
	priv := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize))
	return priv.Public().(ed25519.PublicKey), priv
}

func TestSealGoldenShape(t *testing.T) {
	_, priv := testKey(t, 1)
	payload := []byte(`{"v":1}`)
	raw, err := Seal("hq-1", priv, payload)
	if err != nil {
		t.Fatal(err)
	}
	sig := base64.StdEncoding.EncodeToString(ed25519.Sign(priv, payload))
	want := `{"kid":"hq-1","payload":"eyJ2IjoxfQ==","sig":"` + sig + `"}`
	if string(raw) != want {
		t.Fatalf("envelope\n got %s\nwant %s", raw, want)
	}
}

func TestOpen(t *testing.T) {
	pub, priv := testKey(t, 1)
	otherPub, otherPriv := testKey(t, 2)
	keys := map[string]ed25519.PublicKey{"hq-1": pub, "hq-2": otherPub}
	payload := []byte(`{"v":1,  "id":"a"}`) // odd spacing: no canonicalisation
	good, err := Seal("hq-1", priv, payload)
	if err != nil {
		t.Fatal(err)
	}
	wrongKey, _ := Seal("hq-1", otherPriv, payload)
	unknown, _ := Seal("hq-9", priv, payload)
	// The same JSON with one space less: a different byte string, so the
	// signature must not verify.
	sig := base64.StdEncoding.EncodeToString(ed25519.Sign(priv, payload))
	reformatted := `{"kid":"hq-1","payload":"` + base64.StdEncoding.EncodeToString([]byte(`{"v":1, "id":"a"}`)) + `","sig":"` + sig + `"}`
	shortSig := `{"kid":"hq-1","payload":"e30=","sig":"AAAA"}`

	// Exactly 16 KiB is read; one byte more is refused unread (this one is
	// not even JSON, so ErrTooLarge proves it was never parsed).
	atLimit := append(good[:len(good):len(good)], bytes.Repeat([]byte(" "), MaxEnvelope-len(good))...)
	overLimit := bytes.Repeat([]byte("x"), MaxEnvelope+1)

	tests := []struct {
		name string
		raw  []byte
		want error
	}{
		{"good", good, nil},
		{"16 KiB exactly", atLimit, nil},
		{"16 KiB + 1", overLimit, ErrTooLarge},
		{"not JSON", []byte(`hello`), ErrNotJSON},
		{"JSON array", []byte(`[1,2]`), ErrNotJSON},
		{"missing sig", []byte(`{"kid":"hq-1","payload":"e30="}`), ErrNotJSON},
		{"bad base64", []byte(`{"kid":"hq-1","payload":"!!","sig":"AAAA"}`), ErrNotJSON},
		{"trailing data", append(append([]byte{}, good...), []byte(`{}`)...), ErrNotJSON},
		{"unknown kid", unknown, ErrUnknownKID},
		{"wrong key", wrongKey, ErrBadSignature},
		{"reformatted payload", []byte(reformatted), ErrBadSignature},
		{"short sig", []byte(shortSig), ErrBadSignature},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e, err := Open(tc.raw, keys)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Open err = %v, want %v", err, tc.want)
			}
			if tc.want == nil && (e.KID != "hq-1" || !bytes.Equal(e.Payload, payload)) {
				t.Fatalf("Open = %+v", e)
			}
		})
	}
}

func TestSealRefusesOversize(t *testing.T) {
	_, priv := testKey(t, 1)
	if _, err := Seal("hq-1", priv, []byte(strings.Repeat("a", MaxEnvelope))); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Seal of a 16 KiB payload: err = %v, want ErrTooLarge", err)
	}
	if _, err := Seal("hq-1", priv[:10], []byte("{}")); err == nil {
		t.Fatal("Seal with a short key: want an error")
	}
}

func TestSentinelsDistinct(t *testing.T) {
	errs := []error{ErrTooLarge, ErrNotJSON, ErrUnknownKID, ErrBadSignature}
	for i, a := range errs {
		for j, b := range errs {
			if i != j && errors.Is(a, b) {
				t.Fatalf("%v is %v", a, b)
			}
		}
	}
}

func TestMultiSignature(t *testing.T) {
	pub1, priv1 := testKey(t, 1)
	pub2, priv2 := testKey(t, 2)
	_, priv3 := testKey(t, 3)
	keys := map[string]ed25519.PublicKey{"hq-1": pub1, "hq-2": pub2}
	payload := []byte(`{"v":1,"id":"multi"}`)

	raw, err := SealMulti(payload, Signer{"hq-1", priv1}, Signer{"hq-2", priv2})
	if err != nil {
		t.Fatal(err)
	}
	sig1 := base64.StdEncoding.EncodeToString(ed25519.Sign(priv1, payload))
	sig2 := base64.StdEncoding.EncodeToString(ed25519.Sign(priv2, payload))
	want := `{"payload":"` + base64.StdEncoding.EncodeToString(payload) + `","sigs":[{"kid":"hq-1","sig":"` + sig1 + `"},{"kid":"hq-2","sig":"` + sig2 + `"}]}`
	if string(raw) != want {
		t.Fatalf("envelope\n got %s\nwant %s", raw, want)
	}
	_, signers, err := OpenSigners(raw, keys)
	if err != nil || strings.Join(signers, ",") != "hq-1,hq-2" {
		t.Fatalf("OpenSigners = %v, %v; want hq-1,hq-2", signers, err)
	}

	// Co-signing a single-signature envelope gives the same bytes as
	// sealing with both at once.
	single, err := Seal("hq-1", priv1, payload)
	if err != nil {
		t.Fatal(err)
	}
	cosigned, err := AddSignature(single, Signer{"hq-2", priv2})
	if err != nil || string(cosigned) != want {
		t.Fatalf("AddSignature = %s, %v; want %s", cosigned, err, want)
	}
	if _, err := AddSignature(cosigned, Signer{"hq-2", priv2}); err == nil {
		t.Fatal("the same kid co-signed twice")
	}

	// One valid signature among an unknown kid and a bad one verifies,
	// and only the valid kid counts.
	bad := strings.Replace(want, sig2, base64.StdEncoding.EncodeToString(ed25519.Sign(priv3, payload)), 1)
	if _, s, err := OpenSigners([]byte(bad), keys); err != nil || strings.Join(s, ",") != "hq-1" {
		t.Fatalf("bad second signature: signers %v, err %v; want hq-1", s, err)
	}
	unknownOnly, _ := SealMulti(payload, Signer{"hq-9", priv3})
	if _, _, err := OpenSigners(unknownOnly, keys); !errors.Is(err, ErrUnknownKID) {
		t.Fatalf("unknown kids: %v, want ErrUnknownKID", err)
	}
	forged, _ := SealMulti(payload, Signer{"hq-1", priv3}, Signer{"hq-2", priv3})
	if _, _, err := OpenSigners(forged, keys); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("forged signatures: %v, want ErrBadSignature", err)
	}
	// A repeated kid counts once.
	dup := `{"payload":"` + base64.StdEncoding.EncodeToString(payload) + `","sigs":[{"kid":"hq-1","sig":"` + sig1 + `"},{"kid":"hq-1","sig":"` + sig1 + `"}]}`
	if _, s, err := OpenSigners([]byte(dup), keys); err != nil || len(s) != 1 {
		t.Fatalf("repeated kid: signers %v, err %v; want one", s, err)
	}
}

func TestDecodeEnvelopeForms(t *testing.T) {
	for name, raw := range map[string]string{
		"both forms":      `{"kid":"hq-1","payload":"e30=","sig":"AAAA","sigs":[{"kid":"hq-2","sig":"AAAA"}]}`,
		"kid without sig": `{"kid":"hq-1","payload":"e30="}`,
		"sig without kid": `{"payload":"e30=","sig":"AAAA"}`,
		"empty sigs":      `{"payload":"e30=","sigs":[]}`,
		"sigs entry bare": `{"payload":"e30=","sigs":[{"kid":"hq-1"}]}`,
		"no payload":      `{"sigs":[{"kid":"hq-1","sig":"AAAA"}]}`,
	} {
		if _, err := Decode([]byte(raw)); !errors.Is(err, ErrNotJSON) {
			t.Errorf("%s: %v, want ErrNotJSON", name, err)
		}
	}
}
