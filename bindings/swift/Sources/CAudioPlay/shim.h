#include <audioplay.h>
