/** Where the goldens recorded from a real QEMU 7.2 live (beside the tests that check them). */
export const GOLDENS_DIR = new URL("./goldens/", import.meta.url);
