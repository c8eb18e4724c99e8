/*
 * tools/abr_sim/algo.c — the table of controllers the simulator can run, in display order.
 */
#include "algo.h"

#include <string.h>

const sim_algo *const *sim_algos(size_t *count)
{
    static const sim_algo *const all[] = {&sim_algo_kithara, &sim_algo_bb, &sim_algo_rb,
                                          &sim_algo_bola, &sim_algo_robustmpc};
    *count = sizeof all / sizeof all[0];
    return all;
}

const sim_algo *sim_algo_find(const char *name)
{
    size_t count = 0;
    const sim_algo *const *all = sim_algos(&count);
    for (size_t i = 0; i < count; i++) {
        if (strcmp(all[i]->name, name) == 0) {
            return all[i];
        }
    }
    return NULL;
}
