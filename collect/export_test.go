package collect

import "testing"

// SetPageSize makes collect.cloud-logs ask for n events per API page for
// the rest of the test, so that a few seeded events span several pages.
func SetPageSize(t testing.TB, n int32) {
	old := pageSize.Swap(n)
	t.Cleanup(func() { pageSize.Store(old) })
}
