// expect: TS2322 number
import { Player } from 'audioplay';
new Player({ device: 42 });
