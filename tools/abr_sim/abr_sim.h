/*
 * tools/abr_sim/abr_sim.h — `kithara abr-sim`: trace-driven simulation of ABR controllers.
 */
#ifndef KTH_ABR_SIM_H
#define KTH_ABR_SIM_H

/* Runs the subcommand; argv[0] is "abr-sim". Prints results on stdout and one line per error on
 * stderr. Returns 0 on success, 1 when a run failed (unreadable trace, unwritable log), 2 on a
 * usage error. */
int abr_sim_main(int argc, char **argv);

#endif /* KTH_ABR_SIM_H */
