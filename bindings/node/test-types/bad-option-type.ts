// expect: TS2322 string
import { Player } from 'audioplay';
new Player({ rate: 'abc' });
