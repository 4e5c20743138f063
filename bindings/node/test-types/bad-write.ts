// expect: TS2345 number[]
import { Player } from 'audioplay';
void new Player().write([0, 1, 2]);
