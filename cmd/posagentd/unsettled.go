package main

import (
	"encoding/json"
	"fmt"
)

// An unbind with force reports every approved transaction of the open
// batch in its final ack's result.unsettled, and the unbound event and a
// tamper event carry the same list; remote.md caps an envelope at 16 KiB,
// which holds about 110 entries. A busy terminal's batch (up to 999) would
// make the final ack impossible to sign, and the unbind would resume
// after every reboot and never end. So a result or event data too large
// for one envelope is split: it keeps every other key, with
// unsettled_count (the number of entries) and unsettled_parts, and the
// entries go, in order, in unsettled_parts signed events of type
// "unsettled", {"of":<cmd or event id>,"part":i,"parts":n,"unsettled":[…]},
// written in the same transaction, just before it. HQ ignores event types
// it does not know (remote.md); one that knows reassembles the list.

// unsettledPerPart keeps a part's envelope near 9 KiB (an entry is ~110
// bytes of JSON, ~150 in the envelope's base64).
const unsettledPerPart = 60

// evtUnsettled is the type of the events that carry a split list.
const evtUnsettled = "unsettled"

// unsettledPart is the data of one "unsettled" event.
type unsettledPart struct {
	Of        string            `json:"of"`
	Part      int               `json:"part"`
	Parts     int               `json:"parts"`
	Unsettled []json.RawMessage `json:"unsettled"`
}

// splitUnsettled moves obj's "unsettled" list into parts (see above). ok is
// false when obj has no such list.
func splitUnsettled(obj json.RawMessage, of string) (rest json.RawMessage, parts []json.RawMessage, ok bool, err error) {
	var m map[string]json.RawMessage
	if json.Unmarshal(obj, &m) != nil || m["unsettled"] == nil {
		return nil, nil, false, nil
	}
	var list []json.RawMessage
	if err := json.Unmarshal(m["unsettled"], &list); err != nil {
		return nil, nil, false, fmt.Errorf("unsettled: %w", err)
	}
	n := (len(list) + unsettledPerPart - 1) / unsettledPerPart
	for i := range n {
		p, err := json.Marshal(unsettledPart{Of: of, Part: i + 1, Parts: n,
			Unsettled: list[i*unsettledPerPart : min(len(list), (i+1)*unsettledPerPart)]})
		if err != nil {
			return nil, nil, false, err
		}
		parts = append(parts, p)
	}
	delete(m, "unsettled")
	m["unsettled_count"], _ = json.Marshal(len(list))
	m["unsettled_parts"], _ = json.Marshal(n)
	if rest, err = json.Marshal(m); err != nil {
		return nil, nil, false, err
	}
	return rest, parts, true, nil
}

// unsettledPartID is the id of part i of of's list: of.u<i>, of cut so the
// id keeps to the 64 characters of remote.md's id syntax.
func unsettledPartID(of string, i int) string {
	suffix := fmt.Sprintf(".u%d", i)
	return of[:min(len(of), 64-len(suffix))] + suffix
}
