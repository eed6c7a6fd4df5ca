package nodecollect

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/eksir/eksir/internal/procfs"
)

// ModulesDoc is the document of the modules artefact.
type ModulesDoc struct {
	Envelope
	// Loadable is false when the kernel was built without module support
	// (no /proc/modules); Modules is then empty.
	Loadable bool     `json:"loadable_modules"`
	Modules  []Module `json:"modules"`
}

// Module is one loaded kernel module.
type Module struct {
	Name      string   `json:"name"`
	Size      uint64   `json:"size"`
	Instances int      `json:"instances"`
	Deps      []string `json:"used_by"`
	State     string   `json:"state"`
	Address   string   `json:"address"`
	Taints    string   `json:"taints,omitempty"`
}

// Modules lists /proc/modules.
func (c *Collector) Modules(ctx context.Context) (*ModulesDoc, error) {
	var e errs
	env := c.envelope("modules", &e)
	doc := &ModulesDoc{Modules: []Module{}}
	path := c.path("modules")
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		// CONFIG_MODULES=n: nothing can be loaded, which is itself a fact.
	case err != nil:
		return nil, fmt.Errorf("modules: %w", err)
	default:
		doc.Loadable = true
		ms, perr := procfs.ParseModules(bytes.NewReader(b))
		e.add(path, perr)
		for _, m := range ms {
			doc.Modules = append(doc.Modules, Module{Name: m.Name, Size: m.Size, Instances: m.Instances,
				Deps: m.Deps, State: m.State, Address: m.Address, Taints: m.Taints})
		}
	}
	finish(&env, &e)
	doc.Envelope = env
	return doc, ctx.Err()
}

// netDir returns the /proc/PID/net of the node: PID 1's, or the
// collector's own when PID 1 is not visible.
func (c *Collector) netDir(file string) (string, []byte, error) {
	var errAll error
	for _, p := range []string{c.path("1", "net", file), c.path("self", "net", file)} {
		b, err := os.ReadFile(p)
		if err == nil {
			return p, b, nil
		}
		errAll = errors.Join(errAll, err)
	}
	return "", nil, errAll
}

// RoutesDoc is the document of the routes artefact.
type RoutesDoc struct {
	Envelope
	// IPv4Source and IPv6Source are the files read; IPv6Source is empty
	// when the kernel has IPv6 disabled.
	IPv4Source string   `json:"ipv4_source"`
	IPv6Source string   `json:"ipv6_source"`
	IPv4       []Route4 `json:"ipv4"`
	IPv6       []Route6 `json:"ipv6"`
}

// Route4 is one IPv4 route of the main table.
type Route4 struct {
	Iface       string `json:"iface"`
	Destination string `json:"destination"`
	Gateway     string `json:"gateway"`
	Mask        string `json:"mask"`
	PrefixLen   int    `json:"prefix_len"`
	Flags       uint16 `json:"flags"`
	Metric      int    `json:"metric"`
	MTU         int    `json:"mtu"`
}

// Route6 is one IPv6 route.
type Route6 struct {
	Iface       string `json:"iface"`
	Destination string `json:"destination"`
	Source      string `json:"source_prefix"`
	NextHop     string `json:"next_hop"`
	Metric      uint32 `json:"metric"`
	Flags       uint32 `json:"flags"`
}

// Routes reads the node's routing tables from /proc/1/net/route and
// ipv6_route (falling back to /proc/self/net). These files show the main
// table only; policy routing tables need netlink.
func (c *Collector) Routes(ctx context.Context) (*RoutesDoc, error) {
	var e errs
	env := c.envelope("routes", &e)
	doc := &RoutesDoc{IPv4: []Route4{}, IPv6: []Route6{}}
	p, b, err := c.netDir("route")
	if err != nil {
		return nil, fmt.Errorf("routes: %w", err)
	}
	doc.IPv4Source = p
	rs, err := procfs.ParseRoute(bytes.NewReader(b))
	e.add(p, err)
	for _, r := range rs {
		doc.IPv4 = append(doc.IPv4, Route4{Iface: r.Iface, Destination: r.Destination.String(), Gateway: r.Gateway.String(),
			Mask: r.Mask.String(), PrefixLen: r.PrefixLen(), Flags: r.Flags, Metric: r.Metric, MTU: r.MTU})
	}
	if p, b, err := c.netDir("ipv6_route"); err != nil {
		// Absent when IPv6 is disabled; anything else is worth noting.
		if !errors.Is(err, fs.ErrNotExist) {
			e.add(c.path("1", "net", "ipv6_route"), err)
		}
	} else {
		doc.IPv6Source = p
		rs, err := procfs.ParseIPv6Route(bytes.NewReader(b))
		e.add(p, err)
		for _, r := range rs {
			doc.IPv6 = append(doc.IPv6, Route6{Iface: r.Iface, Destination: r.Destination.String(), Source: r.Source.String(),
				NextHop: r.NextHop.String(), Metric: r.Metric, Flags: r.Flags})
		}
	}
	finish(&env, &e)
	doc.Envelope = env
	return doc, ctx.Err()
}

// NeighboursDoc is the document of the neighbours artefact.
type NeighboursDoc struct {
	Envelope
	Source     string      `json:"source"`
	Neighbours []Neighbour `json:"neighbours"`
}

// Neighbour is one IPv4 ARP cache entry.
type Neighbour struct {
	IP     string `json:"ip"`
	HWType uint16 `json:"hw_type"`
	Flags  uint16 `json:"flags"`
	HWAddr string `json:"hw_addr"`
	Mask   string `json:"mask"`
	Device string `json:"device"`
}

// Neighbours reads the node's IPv4 ARP cache from /proc/1/net/arp. IPv6
// neighbours are only available over netlink and are not collected.
func (c *Collector) Neighbours(ctx context.Context) (*NeighboursDoc, error) {
	var e errs
	env := c.envelope("neighbours", &e)
	p, b, err := c.netDir("arp")
	if err != nil {
		return nil, fmt.Errorf("neighbours: %w", err)
	}
	doc := &NeighboursDoc{Source: p, Neighbours: []Neighbour{}}
	ns, err := procfs.ParseARP(bytes.NewReader(b))
	e.add(p, err)
	for _, n := range ns {
		doc.Neighbours = append(doc.Neighbours, Neighbour{IP: n.IP.String(), HWType: n.HWType, Flags: n.Flags,
			HWAddr: n.HWAddr, Mask: n.Mask, Device: n.Device})
	}
	finish(&env, &e)
	doc.Envelope = env
	return doc, ctx.Err()
}
