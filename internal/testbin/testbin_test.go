package testbin

import (
	"debug/elf"
	"testing"
)

// TestStaticHasNoInterpreter: the binary Static builds is an executable
// that needs no dynamic linker, so it runs in a FROM scratch image.
func TestStaticHasNoInterpreter(t *testing.T) {
	f, err := elf.Open(Static(t))
	if err != nil {
		t.Fatalf("not an ELF executable: %v", err)
	}
	defer f.Close()
	if f.Type != elf.ET_EXEC {
		t.Errorf("ELF type %v, want a static executable (ET_EXEC)", f.Type)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Fatal("the binary asks for a dynamic linker (PT_INTERP): it would not start FROM scratch")
		}
	}
}
