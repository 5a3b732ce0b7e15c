/* libgreet: the library greeter loads by its absolute store path. */
const char *greet(void) { return "hello from libgreet"; }
