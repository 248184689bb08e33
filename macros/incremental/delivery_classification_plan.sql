{#-
    What an incremental build of int_delivery_rows_classified redoes, decided from the
    sources' lineage before the classification changes (the model, its pre-hook and
    int_delivery_rows_to_reclassify call this with the classification as the previous
    build left it, `classified`; none before the first build):

    - new: the sources (file, sheet, load id) staging holds and the classification does not
      (a new file's sheet, a sheet or the app's table reloaded with a new load id);
    - old: the sources the classification holds and staging no longer does (the previous
      load of a reloaded source, a source no longer loaded);
    - all: true when every row must be classified again: no previous build, or the other
      raw tables the classification depends on changed since it was built (the client
      master, the app's clients, drivers and vehicles: every raw table but the history's
      and the app's deliveries, by table and load id; their fingerprint is kept in the
      table's state, 'inputs', post-hook comment_model_state), or a delivery raw table was
      changed in place since it was built (macro raw_edited_since);
    - fingerprint: that fingerprint now.
-#}
{% macro delivery_classification_plan(classified) -%}
    {%- set plan = {'all': true, 'new': [], 'old': [], 'fingerprint': ''} -%}
    {%- if not execute -%}
        {{ return(plan) }}
    {%- endif -%}
    {%- set delivery_tables = delivery_history_relations() | map(attribute='relation')
        | map(attribute='identifier') | list
        + [source('legacy_app', 'deliveries').identifier] -%}
    {%- set query -%}
        select current_tables.table_name, current_tables.load_id
        from ({{ raw_tables_current(source('loader', 'sources'),
            source('loader', 'columns')) }}) as current_tables
        order by current_tables.table_name
    {%- endset -%}
    {%- set others = [] -%}
    {%- for row in run_query(query).rows if row[0] not in delivery_tables -%}
        {%- do others.append(row[0] ~ ':' ~ row[1]) -%}
    {%- endfor -%}
    {%- do plan.update({'fingerprint': local_md5(others | join(','))}) -%}
    {%- if classified is none -%}
        {{ return(plan) }}
    {%- endif -%}
    {%- set previous = model_state(classified) -%}
    {%- set staged = staged_sources(ref('stg_delivery_history__deliveries'))
        + staged_sources(ref('stg_legacy_app__deliveries')) -%}
    {%- set done = staged_sources(classified) -%}
    {%- set new = [] -%}
    {%- for source in staged if not source_in(source, done) -%}
        {%- do new.append(source) -%}
    {%- endfor -%}
    {%- set old = [] -%}
    {%- for source in done if not source_in(source, staged) -%}
        {%- do old.append(source) -%}
    {%- endfor -%}
    {%- do plan.update({'all': previous.get('inputs') != plan.fingerprint
        or raw_edited_since(previous), 'new': new, 'old': old}) -%}
    {{ return(plan) }}
{%- endmacro %}
