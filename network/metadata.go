package network

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/flint-dev/flint/imds"
)

// Metadata reads instance metadata (paths relative to "latest/", a missing
// key an error matching imds.ErrNotFound). Watch needs fresh answers on
// every call, so a caching reader (imds.Memo) must not be passed to it.
type Metadata = imds.Reader

const macsPath = "meta-data/network/interfaces/macs/"

// Keys are the per-ENI metadata keys the planner uses.
var Keys = []string{
	"device-number", "network-card", "local-ipv4s", "subnet-ipv4-cidr-block",
	"ipv6s", "subnet-ipv6-cidr-blocks", "ipv4-prefix", "ipv6-prefix",
}

// Inputs is the metadata the planner needs, as read.
type Inputs struct {
	// PrimaryMAC is the top-level meta-data/mac, lower case.
	PrimaryMAC string
	// ENIs are the entries of network/interfaces/macs/, sorted by MAC.
	ENIs []ENIMetadata
}

// ENIMetadata is one ENI's raw keys. A key absent from Values was answered
// 404. Err is set when a read failed for another reason: the ENI's state is
// then unknown and nothing about its link may be changed.
type ENIMetadata struct {
	MAC    string
	Values map[string]string
	Err    error
}

// gatherParallel bounds concurrent reads so one instance with many ENIs
// does not open a burst of connections to IMDS.
const gatherParallel = 8

// Gather reads the top-level mac and, for every ENI listed, the Keys, with
// up to 8 reads in flight. It fails only when the top-level mac or the list
// of ENIs cannot be read; an error for one ENI is recorded in that ENI.
func Gather(ctx context.Context, md Metadata) (Inputs, error) {
	var (
		in              Inputs
		macErr, listErr error
		entries         []string
		wg              sync.WaitGroup
		sem             = make(chan struct{}, gatherParallel)
		mu              sync.Mutex
		primary         []byte
	)
	wg.Add(2)
	go func() { defer wg.Done(); primary, macErr = md.Get(ctx, "meta-data/mac") }()
	go func() { defer wg.Done(); entries, listErr = md.List(ctx, macsPath) }()
	wg.Wait()
	if macErr != nil {
		return in, fmt.Errorf("read meta-data/mac: %w", macErr)
	}
	if listErr != nil {
		return in, fmt.Errorf("list %s: %w", macsPath, listErr)
	}
	in.PrimaryMAC = strings.ToLower(strings.TrimSpace(string(primary)))
	seen := map[string]bool{}
	for _, e := range entries {
		mac := strings.ToLower(strings.TrimSuffix(strings.TrimSpace(e), "/"))
		if mac == "" || seen[mac] {
			continue
		}
		seen[mac] = true
		in.ENIs = append(in.ENIs, ENIMetadata{MAC: mac, Values: map[string]string{}})
	}
	sort.Slice(in.ENIs, func(i, j int) bool { return in.ENIs[i].MAC < in.ENIs[j].MAC })
	for i := range in.ENIs {
		eni := &in.ENIs[i]
		for _, key := range Keys {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer func() { <-sem; wg.Done() }()
				p := macsPath + eni.MAC + "/" + key
				b, err := md.Get(ctx, p)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					eni.Values[key] = string(b)
				case errors.Is(err, imds.ErrNotFound):
				default:
					if eni.Err == nil {
						eni.Err = fmt.Errorf("read %s: %w", p, err)
					}
				}
			}()
		}
	}
	wg.Wait()
	return in, nil
}
