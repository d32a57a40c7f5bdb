/* placeholder until the CLI lands */
#include <stdio.h>
int main(void) { puts("nightshift " NS_VERSION); return 0; }
