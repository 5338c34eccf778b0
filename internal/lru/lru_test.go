package lru

import "testing"

func TestEvictsLeastRecentlyUsed(t *testing.T) {
	c := New[string, int](2)
	c.Add("a", 1)
	c.Add("b", 2)
	if v, ok := c.Get("a"); !ok || v != 1 { // a is now the most recent
		t.Fatalf("Get(a) = %v, %v", v, ok)
	}
	c.Add("c", 3) // evicts b
	if _, ok := c.Get("b"); ok {
		t.Fatal("b survived eviction")
	}
	for k, want := range map[string]int{"a": 1, "c": 3} {
		if v, ok := c.Get(k); !ok || v != want {
			t.Errorf("Get(%s) = %v, %v; want %v", k, v, ok, want)
		}
	}
	c.Add("a", 10)
	if v, _ := c.Get("a"); v != 10 || c.Len() != 2 {
		t.Errorf("update: Get(a) = %v, Len = %d", v, c.Len())
	}
	c.RemoveFunc(func(k string) bool { return k == "a" })
	c.Remove("c")
	if c.Len() != 0 {
		t.Errorf("Len after removals = %d", c.Len())
	}
}

func TestZeroCapacityStoresNothing(t *testing.T) {
	c := New[int, int](0)
	c.Add(1, 1)
	if _, ok := c.Get(1); ok || c.Len() != 0 {
		t.Fatal("a zero-capacity cache stored an entry")
	}
}

func TestEvictCallbackSeesEveryDroppedValue(t *testing.T) {
	var gone []int
	c := NewWithEvict(2, func(_ string, v int) { gone = append(gone, v) })
	c.Add("a", 1)
	c.Add("b", 2)
	c.Add("a", 3)                                   // replaces 1
	c.Add("c", 4)                                   // evicts b (a was touched last)
	c.Remove("a")                                   // 3
	c.RemoveFunc(func(string) bool { return true }) // 4
	want := []int{1, 2, 3, 4}
	if len(gone) != len(want) {
		t.Fatalf("evicted %v, want %v", gone, want)
	}
	for i := range want {
		if gone[i] != want[i] {
			t.Fatalf("evicted %v, want %v", gone, want)
		}
	}
	z := NewWithEvict(0, func(_ string, v int) { gone = append(gone, v) })
	z.Add("x", 9)
	if gone[len(gone)-1] != 9 {
		t.Error("a zero-capacity cache did not hand back the refused value")
	}
}
