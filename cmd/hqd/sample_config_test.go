package main

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"

	"github.com/posagent/posagent/terminal/remote"
)

// commentedKey is a commented-out assignment of the sample config:
// "#key = value" at the start of a line (prose comments have a space
// after the #).
var commentedKey = regexp.MustCompile(`(?m)^#([a-z_]+ = .*)$`)

// configKeys lists every key of hqd's config with its value in cfg:
// "mqtt.broker" → cfg.MQTT.Broker, …, one "policy.<type>" per command
// type a policy may name.
func configKeys(cfg Config) map[string]reflect.Value {
	keys := map[string]reflect.Value{}
	var walk func(v reflect.Value, prefix string)
	walk = func(v reflect.Value, prefix string) {
		for i := range v.NumField() {
			f := v.Type().Field(i)
			key := prefix + strings.Split(f.Tag.Get("toml"), ",")[0]
			fv := v.Field(i)
			switch {
			case f.Type == reflect.TypeFor[Duration]():
				keys[key] = fv
			case fv.Kind() == reflect.Struct:
				walk(fv, key+".")
			case fv.Kind() == reflect.Map:
				for _, typ := range []remote.CommandType{remote.TypeUnbind, remote.TypeStatus, remote.TypeProvision, remote.TypeUpdate} {
					keys[key+"."+string(typ)] = reflect.ValueOf(cfg.Policy[string(typ)])
				}
			default:
				keys[key] = fv
			}
		}
	}
	walk(reflect.ValueOf(cfg), "")
	return keys
}

// The sample config the posagent-hq package installs as /etc/hqd/hqd.toml
// parses to exactly the defaults; with every commented-out line taken in,
// it still parses, names every key hqd has, and shows the default of each
// key that has one. Copies missing a key or showing a wrong default fail.
func TestShippedSampleConfig(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "build", "package", "hqd.toml"))
	if err != nil {
		t.Fatal(err)
	}
	if probs := checkSampleConfig(b); len(probs) != 0 {
		t.Fatalf("build/package/hqd.toml:\n%s", strings.Join(probs, "\n"))
	}
	for _, tc := range []struct{ name, old, new, want string }{
		{"missing key", "#share_group = \"hqd\"\n", "", "mqtt.share_group"},
		{"wrong default", "#lease = \"15s\"", "#lease = \"20s\"", "jobs.lease"},
		{"set, not commented", "#log_level = \"info\"", "log_level = \"debug\"", "not the defaults"},
		{"bad example", "#cert_file = \"/etc/hqd/api.pem\"\n", "", "http.cert_file"},
		{"unknown key", "#tick = ", "#tock = ", "jobs.tock"},
	} {
		bad := strings.Replace(string(b), tc.old, tc.new, 1)
		if bad == string(b) {
			t.Fatalf("%s: the sample has no %q to edit", tc.name, tc.old)
		}
		if probs := strings.Join(checkSampleConfig([]byte(bad)), "\n"); !strings.Contains(probs, tc.want) {
			t.Errorf("%s: problems %q, want one naming %q", tc.name, probs, tc.want)
		}
	}
}

// checkSampleConfig returns what is wrong with a sample config.
func checkSampleConfig(b []byte) []string {
	var probs []string
	cfg, err := ParseConfig(b)
	if err != nil {
		return []string{"as shipped: " + err.Error()}
	}
	if !reflect.DeepEqual(cfg, DefaultConfig()) {
		probs = append(probs, fmt.Sprintf("as shipped it is not the defaults: %+v", cfg))
	}
	all := commentedKey.ReplaceAllString(string(b), "$1")
	full, err := ParseConfig([]byte(all))
	if err != nil {
		return append(probs, "with every example taken in: "+err.Error())
	}
	var raw map[string]any
	md, err := toml.Decode(all, &raw)
	if err != nil {
		return append(probs, err.Error())
	}
	var inFile []string
	for _, k := range md.Keys() {
		if md.Type(k...) != "Hash" {
			inFile = append(inFile, k.String())
		}
	}
	defaults, set := configKeys(DefaultConfig()), configKeys(full)
	for key, def := range defaults {
		if !slices.Contains(inFile, key) {
			probs = append(probs, "does not show key "+key)
		} else if !def.IsZero() && !reflect.DeepEqual(set[key].Interface(), def.Interface()) {
			probs = append(probs, fmt.Sprintf("shows %s = %v, the default is %v", key, set[key].Interface(), def.Interface()))
		}
	}
	for _, key := range inFile {
		if _, ok := defaults[key]; !ok {
			probs = append(probs, "shows "+key+", which hqd does not have")
		}
	}
	return probs
}
