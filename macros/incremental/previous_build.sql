{#-
    A model of this project as the previous build left it, as a relation (none before the
    first build): how int_delivery_days_to_rebuild reads the incremental delivery marts it
    feeds, a dependency dbt's graph cannot hold (it would be a cycle). The caller declares
    the models it reads so in its yml, `config: {meta: {previous_build: [...]}}`, where the
    docs show them; a model it does not declare stops the build. Nothing is looked up while
    dbt parses.
-#}
{% macro previous_build(name) -%}
    {%- if not execute -%}
        {{ return(none) }}
    {%- endif -%}
    {%- if name not in config.get('meta', {}).get('previous_build', []) -%}
        {{ exceptions.raise_compiler_error(
            'previous_build: ' ~ name ~ ' is not in the meta previous_build of ' ~ model.name) }}
    {%- endif -%}
    {%- for node in graph.nodes.values()
        if node.resource_type == 'model' and node.name == name -%}
        {{ return(adapter.get_relation(
            database=node.database, schema=node.schema, identifier=node.alias)) }}
    {%- endfor -%}
    {{ exceptions.raise_compiler_error('previous_build: no model ' ~ name) }}
{%- endmacro %}
